"""Fuzz every root field of the GraphQL schema (schemathesis' GraphQL generation): random
selections and arguments, valid and not, against a registry holding a model in most
states. No answer may be a server error: no 5xx, and no GraphQL error coded
``internal-error`` (a bug of ours, answered 200 as GraphQL answers every error)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case

from api.graphql.limits import GraphqlLimits
from api.graphql.router import build_schema
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger

MODELS = "/api/v1/models"
INTERNAL = "urn:modelledger:problem:internal-error"

# Read at import, to make one test item per root field (this schema is never served).
schema = schemathesis.graphql.from_dict(build_schema(GraphqlLimits()).introspect())


@pytest.fixture(scope="module")
def app() -> Iterator[TestClient]:
    ledger = make_ledger("memory://", rate_limit=0)
    with api_client(ledger) as client:
        for name, steps in (("created", 0), ("trained", 1), ("deployed", 2)):
            body = {"name": name, "task": "classification", "framework": "jax", "tags": ["x"]}
            model_id = client.post(MODELS, json=body).json()["id"]
            if steps >= 1:
                run = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).json()
                complete = f"{MODELS}/{model_id}/training-runs/{run['run_id']}/complete"
                client.post(complete, json={"metrics": {"accuracy": 0.9}})
            if steps >= 2:
                client.post(f"{MODELS}/{model_id}/deploy", json={"environment": "production"})
        yield client
    ledger.close()


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,  # the same cases every run: a failure here is never a fluke
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_question_is_a_server_error(case: Case[Any], app: TestClient) -> None:
    sent: dict[str, Any] = case.as_transport_kwargs(base_url="http://testserver")
    response = app.request(sent["method"], "/graphql", json=sent.get("json"))
    assert response.status_code < 500, response.text
    if response.headers["content-type"].startswith("application/json"):
        errors = response.json().get("errors") or []
        assert not [e for e in errors if e.get("extensions", {}).get("code") == INTERNAL], (
            sent.get("json"),
            errors,
        )
