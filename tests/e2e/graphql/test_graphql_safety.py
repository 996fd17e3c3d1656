"""GraphQL is safe by construction: each limit refuses what it should (and lets through what
it should), batching is refused, introspection follows its setting, errors carry REST's
problem types, keys authenticate as in REST, and a key sees exactly what REST shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.auth import TEST_ADMIN_KEY, api_client, bearer
from tests.support.graphql import data_of, graphql
from tests.support.ledgers import make_ledger

MODELS = "/api/v1/models"
PROBLEM = "urn:modelledger:problem:"


@pytest.fixture
def tight() -> Iterator[TestClient]:
    """Limits small enough to reach in a test."""
    ledger = make_ledger(
        "memory://",
        graphql_max_depth=4,
        graphql_max_aliases=2,
        graphql_max_root_fields=3,
        graphql_max_tokens=200,
        graphql_introspection=False,
        graphql_max_log_reads=2,
    )
    with api_client(ledger) as client:
        yield client
    ledger.close()


def refused(answer: dict[str, Any], words: str) -> None:
    assert answer.get("data") is None, answer
    [error] = answer["errors"]
    assert words in error["message"], error
    assert error["extensions"]["code"] == PROBLEM + "invalid-request"


def test_each_limit_refuses_past_it_and_allows_up_to_it(tight: TestClient) -> None:
    # depth counts the fields that select others: models > edges > node > versions >
    # trainingRun is 5, one more than allowed; without edges it is 4
    deep = "{ models { edges { node { versions { trainingRun { runId } } } } } }"
    refused(graphql(tight, deep), "exceeds maximum operation depth of 4")
    allowed = "{ models { nodes { versions { trainingRun { runId } } } } }"
    assert "errors" not in graphql(tight, allowed)
    refused(
        graphql(
            tight,
            "{ a: statistics { totalModels } b: statistics { totalModels } "
            "c: statistics { totalModels } }",
        ),
        "aliases",
    )
    refused(
        graphql(
            tight,
            "{ metricDefinitions { name } statistics { totalModels } "
            "events { atHead } deployments { nodes { environment } } }",
        ),
        "asks for 4 root fields; at most 3",
    )
    # A fragment spread at the root counts its fields in
    spread = (
        "query { ...Roots events { atHead } } fragment Roots on Query "
        "{ metricDefinitions { name } statistics { totalModels } models { nodes { id } } }"
    )
    refused(graphql(tight, spread), "root fields")
    many = "{ " + " ".join(["metricDefinitions { name }"] * 60) + " }"
    refused(graphql(tight, many), "tokens")


def test_a_query_reads_a_bounded_number_of_models_from_the_log(tight: TestClient) -> None:
    # Given three models (the limit lets a query read two of them from the log)
    for name in ("a", "b", "c"):
        body = {"name": name, "task": "classification", "framework": "jax"}
        at = tight.post(MODELS, json=body).json()["position"]
    trails = (
        "query($at: Int!) { models(minPosition: $at) { nodes { history { nodes { type } } } } }"
    )
    answer = graphql(tight, trails, at=at)
    # Then the third trail is refused, naming the setting
    assert any("MODELLEDGER_GRAPHQL_MAX_LOG_READS" in e["message"] for e in answer["errors"])
    two = trails.replace("models(", "models(first: 2, ")
    assert "errors" not in graphql(tight, two, at=at)


def test_introspection_is_off_when_the_setting_says_so(
    tight: TestClient, admin_client: TestClient
) -> None:
    asked = "{ __schema { queryType { name } } }"
    answer = graphql(tight, asked)
    assert answer.get("data") is None and "introspection" in answer["errors"][0]["message"]
    assert data_of(admin_client, asked) == {"__schema": {"queryType": {"name": "Query"}}}


def test_a_batch_of_operations_is_refused(admin_client: TestClient) -> None:
    response = admin_client.post("/graphql", json=[{"query": "{ statistics { totalModels } }"}] * 2)
    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM + "bad-request"
    assert response.json()["errors"] == [{"field": "body", "message": "Batching is not enabled"}]
    no_query = admin_client.post("/graphql", json={"variables": {}})
    assert no_query.status_code == 400 and "No GraphQL query" in no_query.json()["detail"]


def test_requests_without_a_good_key_are_refused_as_rest_refuses_them(
    admin_client: TestClient,
) -> None:
    asked = {"query": "{ statistics { totalModels } }"}
    for headers in ({"Authorization": ""}, bearer("not-a-key")):
        response = admin_client.post("/graphql", json=asked, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == PROBLEM + "unauthorized"


def test_errors_carry_the_rest_problem_type_and_the_argument(admin_client: TestClient) -> None:
    answer = graphql(admin_client, '{ model(id: "nope") { id } }')
    [error] = answer["errors"]
    assert error["path"] == ["model"]
    assert error["extensions"] == {
        "code": PROBLEM + "invalid-request",
        "status": 422,
        "field": "id",
    }
    answer = graphql(admin_client, "{ statistics(minPosition: 99999) { totalModels } }")
    assert answer["errors"][0]["extensions"]["code"] == PROBLEM + "invalid-value"
    assert answer["errors"][0]["extensions"]["field"] == "minPosition"
    answer = graphql(admin_client, "{ models(first: 0) { nodes { id } } }")
    assert answer["errors"][0]["extensions"]["field"] == "first"
    answer = graphql(admin_client, '{ models(sort: "metric") { nodes { id } } }')
    assert answer["errors"][0]["extensions"]["field"] == "metric"
    answer = graphql(admin_client, "{ nothing }")
    assert answer["errors"][0]["extensions"]["code"] == PROBLEM + "invalid-request"
    assert "Cannot query field" in answer["errors"][0]["message"]


def test_a_model_read_right_after_a_change_shows_it(admin_client: TestClient) -> None:
    body = {"name": "fresh", "task": "classification", "framework": "jax"}
    created = admin_client.post(MODELS, json=body).json()
    changed = admin_client.patch(f"{MODELS}/{created['id']}", json={"description": "new words"})
    assert changed.status_code == 200, changed.text
    answer = graphql(
        admin_client, "query($id: ID!) { model(id: $id) { version description } }", id=created["id"]
    )
    assert answer["data"]["model"] == {"version": 2, "description": "new words"}
    assert answer["extensions"]["positions"]["model"] >= changed.json()["position"]


@pytest.fixture
def admin_client() -> Iterator[TestClient]:
    ledger = make_ledger("memory://")
    with api_client(ledger) as client:
        yield client
    ledger.close()


def test_a_key_sees_in_graphql_exactly_what_rest_shows_it(client: TestClient) -> None:
    # Given a model in each of two projects and a viewer key scoped to one of them
    ids = {}
    for project in ("alpha", "beta"):
        body = {"name": "m", "project": project, "task": "t", "framework": "f", "tags": ["x"]}
        created = client.post(MODELS, json=body)
        assert created.status_code == 201, created.text
        ids[project] = created.json()["id"]
    at = created.json()["position"]
    key = client.post(
        "/api/v1/admin/keys", json={"name": "v", "role": "viewer", "projects": ["alpha"]}
    ).json()["key"]
    viewer = bearer(key)
    # When it asks for both models, the catalogue and the log
    asked = """query($a: ID!, $b: ID!, $at: Int!) {
      a: model(id: $a, minPosition: $at) { project }
      b: model(id: $b, minPosition: $at) { project }
      hidden: modelByName(project: "beta", name: "m") { id }
      models(minPosition: $at) { nodes { project } }
      statistics(minPosition: $at) { totalModels }
      events { nodes { modelId } }
    }"""
    answer = graphql(client, asked, headers=viewer, a=ids["alpha"], b=ids["beta"], at=at)
    # Then the hidden model is null, exactly like an unknown one, and nowhere else either
    assert "errors" not in answer, answer
    found = answer["data"]
    assert found["a"] == {"project": "alpha"}
    assert found["b"] is None and found["hidden"] is None
    assert found["models"]["nodes"] == [{"project": "alpha"}]
    assert found["statistics"]["totalModels"] == 1
    assert {n["modelId"] for n in found["events"]["nodes"]} == {ids["alpha"]}
    # And asking for the hidden model's events, or where it serves, finds nothing
    hidden = """query($b: ID!) { events(modelId: $b) { nodes { type } }
      deployments(modelId: $b) { nodes { environment } } }"""
    assert graphql(client, hidden, headers=viewer, b=ids["beta"])["data"] == {
        "events": {"nodes": []},
        "deployments": {"nodes": []},
    }
    rest = client.get(f"{MODELS}/{ids['beta']}", headers=viewer)
    assert rest.status_code == 404
    unknown = graphql(
        client, '{ model(id: "00000000-0000-0000-0000-000000000000") { id } }', headers=viewer
    )
    assert unknown == {"data": {"model": None}}


def test_a_revoked_key_is_refused_as_an_unknown_one(admin_client: TestClient) -> None:
    made = admin_client.post("/api/v1/admin/keys", json={"name": "gone", "role": "viewer"})
    key_id, key = made.json()["id"], made.json()["key"]
    assert admin_client.delete(f"/api/v1/admin/keys/{key_id}").status_code in (200, 204)
    response = admin_client.post(
        "/graphql", json={"query": "{ statistics { totalModels } }"}, headers=bearer(key)
    )
    assert response.status_code == 401
    assert TEST_ADMIN_KEY not in response.text


def test_a_get_that_is_not_a_browser_is_told_to_post(admin_client: TestClient) -> None:
    response = admin_client.get("/graphql", headers={"Accept": "application/json"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["type"] == PROBLEM + "method-not-allowed"
    page = admin_client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
