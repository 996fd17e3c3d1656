"""The access policy, checked over HTTP for random (role, projects, operation, project)
triples: each request is allowed exactly when the policy, restated here, says so."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.problems import MODELS
from tests.support.auth import api_client, bearer
from tests.support.ledgers import make_ledger

PROJECTS = ("alpha", "beta", "gamma")
ROLES = ("viewer", "editor", "admin")
OPERATIONS = ("read", "history", "search", "update", "create", "list_keys", "rebuild_status")
_names = itertools.count()


@dataclass
class World:
    admin: TestClient
    models: dict[str, str]  # project -> a model in it
    keys: dict[tuple[str, frozenset[str] | None], str]
    position: int

    def key(self, role: str, scope: frozenset[str] | None) -> str:
        if role == "admin":
            scope = None  # an admin key is never limited to projects (asking for it is a 422)
        if (role, scope) not in self.keys:
            body: dict[str, Any] = {"name": f"k{next(_names)}", "role": role}
            if scope is not None:
                body["projects"] = sorted(scope)
            response = self.admin.post("/api/v1/admin/keys", json=body)
            assert response.status_code == 201, response.text
            self.keys[role, scope] = response.json()["key"]
        return self.keys[role, scope]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    ledger = make_ledger("memory://", rate_limit=0)
    with api_client(ledger) as admin:
        models = {}
        for project in PROJECTS:
            body = {"name": "m", "project": project, "task": "t", "framework": "f"}
            created = admin.post(MODELS, json=body)
            assert created.status_code == 201, created.text
            models[project] = created.json()["id"]
        yield World(admin, models, {}, created.json()["position"])
    ledger.close()


def expected(role: str, scope: frozenset[str] | None, operation: str, project: str) -> int:
    """The policy in a table: roles rank viewer < editor < admin; admins see every
    project, others their scope (all when unscoped); unseen models are 404."""
    sees = role == "admin" or scope is None or project in scope
    if operation in ("list_keys", "rebuild_status"):
        return 200 if role == "admin" else 403
    if operation in ("read", "history"):
        return 200 if sees else 404
    if operation == "search":
        return 200
    if role == "viewer":
        return 403
    if operation == "update":
        return 200 if sees else 404
    return 201 if sees else 403  # create


def send(client: TestClient, world: World, operation: str, project: str) -> tuple[int, list[str]]:
    model = world.models[project]
    at = {"min_position": world.position}
    if operation == "read":
        response = client.get(f"{MODELS}/{model}", params=at)
    elif operation == "history":
        response = client.get(f"{MODELS}/{model}/history")
    elif operation == "search":
        response = client.get(MODELS, params={**at, "project": project})
    elif operation == "update":
        response = client.patch(f"{MODELS}/{model}", json={"description": f"d{next(_names)}"})
    elif operation == "create":
        body = {"name": f"n{next(_names)}", "project": project, "task": "t", "framework": "f"}
        response = client.post(MODELS, json=body)
    elif operation == "list_keys":
        response = client.get("/api/v1/admin/keys")
    else:
        response = client.get("/api/v1/admin/projections")
    found = [m["project"] for m in response.json()["items"]] if operation == "search" else []
    return response.status_code, found


scopes = st.none() | st.frozensets(st.sampled_from(PROJECTS), min_size=1)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    role=st.sampled_from(ROLES),
    scope=scopes,
    operation=st.sampled_from(OPERATIONS),
    project=st.sampled_from(PROJECTS),
)
def test_a_request_is_allowed_exactly_when_the_policy_says(
    world: World, role: str, scope: frozenset[str] | None, operation: str, project: str
) -> None:
    client = TestClient(world.admin.app, headers=bearer(world.key(role, scope)))
    status, found = send(client, world, operation, project)
    assert status == expected(role, scope, operation, project), (role, scope, operation, project)
    if operation == "search":  # a list never shows what the key may not see
        sees = role == "admin" or scope is None or project in scope
        assert set(found) == ({project} if sees else set())  # creates add to the first
