"""Shared pieces of the bad-input stories: endpoints, valid bodies, problem+json checks.

Bad input over HTTP must never give a 500, and always RFC 9457 problem+json naming the
field at fault. Most stories run on the in-memory store (fast); a representative set runs
on both real stores (SQLite and PostgreSQL) through the `client` fixture.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, cast

from fastapi.testclient import TestClient
from httpx2 import Response

from tests.support.reads import model_now

MODELS = "/api/v1/models"
PROBLEM_JSON = "application/problem+json"
UNKNOWN_MODEL = "00000000-0000-4000-8000-000000000000"
JSON_HEADERS = {"content-type": "application/json"}
_names = itertools.count(1)


# -- helpers --------------------------------------------------------------------------------------


def unique_name(prefix: str = "model") -> str:
    return f"{prefix}-{next(_names)}"


def assert_problem(
    response: Response,
    status: int,
    field: str | None = None,
    *,
    field_prefix: str | None = None,
) -> dict[str, Any]:
    """The response is problem+json with the given status, naming the field if one is given."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path}: expected {status}, "
        f"got {response.status_code}: {response.text[:500]}"
    )
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys(), problem
    assert problem["status"] == status
    assert isinstance(problem["type"], str) and problem["type"]
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    for error in problem.get("errors", []):
        assert isinstance(error["field"], str) and error["field"], error
        assert isinstance(error["message"], str) and error["message"], error
    if field is not None:
        assert field in error_fields(problem), problem
    if field_prefix is not None:
        assert any(name.startswith(field_prefix) for name in error_fields(problem)), problem
    return problem


def error_fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem.get("errors", [])]


def is_finite_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(cast(float, value))


def assert_not_server_error(response: Response) -> None:
    assert response.status_code < 500, (
        f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
        f"{response.text[:500]}"
    )
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


def raw_json(client: TestClient, method: str, url: str, text: str | bytes) -> Response:
    """Send JSON text as is (NaN, Infinity, lone surrogates... that json= would refuse)."""
    content = text.encode() if isinstance(text, str) else text
    response: Response = client.request(method, url, content=content, headers=JSON_HEADERS)
    return response


def create_model(client: TestClient, **fields: Any) -> str:
    body = {"name": unique_name(), "task": "classification", "framework": "pytorch", **fields}
    response = client.post(MODELS, json=body)
    assert response.status_code == 201, response.text
    model_id: str = response.json()["id"]
    return model_id


def start_training(client: TestClient, model_id: str) -> str:
    response = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "s3://data/train"})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def trained_model(client: TestClient) -> str:
    model_id = create_model(client)
    run_id = start_training(client, model_id)
    completed = client.post(
        f"{MODELS}/{model_id}/training-runs/{run_id}/complete",
        json={"metrics": {"accuracy": 0.9}},
    )
    assert completed.status_code == 200, completed.text
    return model_id


def model_version(client: TestClient, model_id: str) -> int:
    response = model_now(client, model_id)
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


@dataclass(frozen=True)
class Subject:
    """A registered model with one running training run: a target for every command."""

    model_id: str
    run_id: str

    def path(self, template: str) -> str:
        return template.format(model=self.model_id, run=self.run_id)


CREATE = ("POST", MODELS)
PATCH = ("PATCH", MODELS + "/{model}")
PUT = ("PUT", MODELS + "/{model}")
DELETE = ("DELETE", MODELS + "/{model}")
TRAIN = ("POST", MODELS + "/{model}/train")
COMPLETE = ("POST", MODELS + "/{model}/training-runs/{run}/complete")
FAIL = ("POST", MODELS + "/{model}/training-runs/{run}/fail")
DEPLOY = ("POST", MODELS + "/{model}/deploy")
UNDEPLOY = ("POST", MODELS + "/{model}/undeploy")
ROLLBACK = ("POST", MODELS + "/{model}/rollback")
READ = ("GET", MODELS + "/{model}")
HISTORY = ("GET", MODELS + "/{model}/history")

# A valid body for every endpoint that takes one.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    CREATE: {"name": "valid-name", "task": "classification", "framework": "pytorch"},
    PATCH: {"description": "better"},
    PUT: {"description": "better"},
    TRAIN: {"dataset": "s3://data/train"},
    COMPLETE: {"metrics": {"accuracy": 0.9}},
    FAIL: {"reason": "out of memory"},
    DEPLOY: {"environment": "production"},
    UNDEPLOY: {"environment": "production"},
    ROLLBACK: {"environment": "production"},
}
BODY_ENDPOINTS = list(VALID_BODIES)
MODEL_ENDPOINTS = [PATCH, PUT, DELETE, TRAIN, COMPLETE, FAIL, DEPLOY, UNDEPLOY, ROLLBACK]
MODEL_ENDPOINTS += [READ, HISTORY]


def endpoint_id(endpoint: tuple[str, str]) -> str:
    return f"{endpoint[0]} {endpoint[1]}"
