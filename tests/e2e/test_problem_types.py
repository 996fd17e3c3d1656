"""Errors a client can act on: every problem+json names its kind with a stable `type`
URI (one status and one title per kind), and every 404, 409, 412 and 413 names what
it is about in `errors[]`, as the 422s name their field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelledger.web import create_app
from tests.e2e.problems import (
    MODELS,
    UNKNOWN_MODEL,
    Subject,
    assert_problem,
    create_model,
    raw_json,
    trained_model,
    unique_name,
)
from tests.e2e.test_access import as_key, issue
from tests.support.auth import TEST_ADMIN_KEY, bearer
from tests.support.ledgers import make_ledger
from tests.support.processes import free_port

PREFIX = "urn:modelledger:problem:"
HTTP_REFERENCE = Path(__file__).parents[2] / "docs" / "reference" / "http-api.md"


def expect(response: Any, status: int, kind: str, field: str | None) -> dict[str, Any]:
    """A problem of that kind (its type URI), naming ``field`` in errors[] if given."""
    problem = assert_problem(response, status, field)
    assert problem["type"] == PREFIX + kind, problem
    return problem


# -- the kinds ------------------------------------------------------------------------------------


def test_every_kind_has_one_status_and_one_title_and_is_listed_for_clients(
    memory_client: TestClient,
) -> None:
    # Given the kinds of problem the API answers with
    from api.errors import KINDS

    types = [kind.type for kind in KINDS]
    # Then each type is unique, stands for one status and title, and is a URN
    assert len(set(types)) == len(types)
    assert len({kind.title for kind in KINDS}) == len(KINDS)
    assert all(re.fullmatch(r"urn:modelledger:problem:[a-z-]+", t) for t in types), types
    # and the HTTP API reference and the OpenAPI document list every one of them
    reference = HTTP_REFERENCE.read_text()
    document = memory_client.get("/openapi.json").json()
    schema = document["components"]["schemas"]["Problem"]
    for kind in KINDS:
        assert f"`{kind.type}`" in reference, kind
        assert kind.type in schema["description"], kind
    assert schema["properties"]["type"]["enum"] == types


# -- 400, 401, 403 --------------------------------------------------------------------------------


def test_a_malformed_header_and_body_are_bad_requests_of_their_own_kinds(
    memory_client: TestClient, subject: Subject
) -> None:
    # When If-Match is malformed, or the body is not JSON
    url = f"{MODELS}/{subject.model_id}"
    bad_tag = memory_client.patch(url, json={"description": "x"}, headers={"If-Match": "v1"})
    bad_json = raw_json(memory_client, "PATCH", url, "{")
    # Then each is a 400 of its kind, naming the header or the body
    expect(bad_tag, 400, "bad-request", "If-Match")
    expect(bad_json, 400, "malformed-json", "body")


def test_no_key_is_unauthorized_and_a_viewer_command_is_forbidden(
    memory_client: TestClient,
) -> None:
    # Given a viewer's key
    viewer = as_key(memory_client, issue(memory_client, "reader", "viewer"))
    # When a request comes without a key, and the viewer sends a command
    anonymous = TestClient(memory_client.app).get(MODELS)
    refused = viewer.post(MODELS, json={"name": "x", "task": "t", "framework": "f"})
    # Then they are unauthorized and forbidden, naming the Authorization header
    expect(anonymous, 401, "unauthorized", "Authorization")
    expect(refused, 403, "forbidden", "Authorization")


# -- 404: what was not found ----------------------------------------------------------------------


def test_each_not_found_names_what_was_not_found(
    memory_client: TestClient, subject: Subject
) -> None:
    model = subject.model_id
    # When a command or a read names an unknown model, run, version, key or path
    unknown_model = memory_client.post(f"{MODELS}/{UNKNOWN_MODEL}/train", json={"dataset": "d"})
    read_unknown = memory_client.get(f"{MODELS}/{UNKNOWN_MODEL}/history")
    unknown_run = memory_client.post(
        f"{MODELS}/{model}/training-runs/no-such-run/fail", json={"reason": "x"}
    )
    no_version = memory_client.get(f"{MODELS}/{model}", params={"at_version": 99})
    unknown_key = memory_client.delete(f"/api/v1/admin/keys/{UNKNOWN_MODEL}")
    no_route = memory_client.get("/api/v1/modelz")
    # Then each is a 404 naming it
    expect(unknown_model, 404, "not-found", "model_id")
    expect(read_unknown, 404, "not-found", "model_id")
    expect(unknown_run, 404, "not-found", "run_id")
    expect(no_version, 404, "not-found", "at_version")
    expect(unknown_key, 404, "not-found", "key_id")
    expect(no_route, 404, "not-found", "path")


def test_a_method_a_path_lacks_is_its_own_kind(memory_client: TestClient) -> None:
    response = memory_client.post(f"{MODELS}/statistics")
    problem = expect(response, 405, "method-not-allowed", None)
    assert "POST" in problem["detail"] and "allow" in response.headers


# -- 409 and 412: what stands in the way ----------------------------------------------------------


def test_each_conflict_names_what_it_is_about(memory_client: TestClient, subject: Subject) -> None:
    # Given a model that was never trained, a trained one, and a finished run
    fresh = subject.model_id
    trained = trained_model(memory_client)
    done = memory_client.post(
        f"{MODELS}/{fresh}/training-runs/{subject.run_id}/fail", json={"reason": "oom"}
    )
    assert done.status_code == 200, done.text
    deployed = memory_client.post(f"{MODELS}/{trained}/deploy", json={"environment": "prod"})
    assert deployed.status_code == 200, deployed.text
    # When commands break the rules of each one's state
    answers = {
        "model_id": memory_client.post(f"{MODELS}/{fresh}/deploy", json={"environment": "prod"}),
        "run_id": memory_client.post(
            f"{MODELS}/{fresh}/training-runs/{subject.run_id}/complete",
            json={"metrics": {"accuracy": 0.9}},
        ),
        "environment": memory_client.post(
            f"{MODELS}/{trained}/undeploy", json={"environment": "staging"}
        ),
    }
    rollback = memory_client.post(f"{MODELS}/{trained}/rollback", json={"environment": "prod"})
    archive_deployed = memory_client.delete(f"{MODELS}/{trained}")
    # Then each is a 409 conflict naming the model, the run or the environment
    for field, response in answers.items():
        expect(response, 409, "conflict", field)
    expect(rollback, 409, "conflict", "environment")
    expect(archive_deployed, 409, "conflict", "model_id")


def test_an_archived_model_and_a_revoked_key_are_conflicts_naming_them(
    memory_client: TestClient,
) -> None:
    # Given an archived model and a revoked key
    model_id = create_model(memory_client)
    assert memory_client.delete(f"{MODELS}/{model_id}").status_code == 200
    issued = memory_client.post("/api/v1/admin/keys", json={"name": "k", "role": "viewer"})
    key_id = issued.json()["id"]
    assert memory_client.delete(f"/api/v1/admin/keys/{key_id}").status_code == 200
    # When the model is trained and the key revoked again
    train = memory_client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"})
    revoke = memory_client.delete(f"/api/v1/admin/keys/{key_id}")
    # Then each is a conflict naming the model or the key
    expect(train, 409, "conflict", "model_id")
    expect(revoke, 409, "conflict", "key_id")


def test_a_duplicate_name_and_a_stale_if_match_name_their_field(
    memory_client: TestClient,
) -> None:
    # Given a model
    name = unique_name()
    model_id = create_model(memory_client, name=name)
    # When another takes its name, and it is changed with a stale If-Match
    again = memory_client.post(MODELS, json={"name": name, "task": "t", "framework": "f"})
    stale = memory_client.patch(
        f"{MODELS}/{model_id}", json={"description": "x"}, headers={"If-Match": '"7"'}
    )
    # Then they are a duplicate name and a failed precondition, naming name and If-Match
    expect(again, 409, "duplicate-name", "name")
    expect(stale, 412, "precondition-failed", "If-Match")


# -- 413, 415, 422 --------------------------------------------------------------------------------


def test_a_body_over_the_cap_names_the_body(capped_client: TestClient) -> None:
    body = {"name": unique_name(), "task": "t", "framework": "f", "description": "x" * 3000}
    expect(capped_client.post(MODELS, json=body), 413, "payload-too-large", "body")


def test_the_422_kinds(memory_client: TestClient, subject: Subject) -> None:
    model = subject.model_id
    # When a field is ill-typed, a value is refused by the registry, an Idempotency-Key
    # is reused for another request, and a backend is named that has no credentials
    ill_typed = memory_client.post(MODELS, json={"name": 5, "task": "t", "framework": "f"})
    trained = trained_model(memory_client)
    untrained_version = memory_client.post(
        f"{MODELS}/{trained}/deploy", json={"environment": "prod", "model_version": 9}
    )
    key = {"Idempotency-Key": "reused-key"}
    first = memory_client.patch(f"{MODELS}/{model}", json={"description": "a"}, headers=key)
    assert first.status_code == 200, first.text
    reused = memory_client.patch(f"{MODELS}/{model}", json={"description": "b"}, headers=key)
    no_backend = memory_client.post(
        f"{MODELS}/{model}/train", json={"dataset": "d", "backend": "openai", "base_model": "m"}
    )
    # Then each is a 422 of its own kind, naming its field
    expect(ill_typed, 422, "invalid-request", "body.name")
    expect(untrained_version, 422, "invalid-value", "model_version")
    expect(reused, 422, "idempotency-key-reused", "Idempotency-Key")
    expect(no_backend, 422, "backend-not-configured", "backend")


# -- 429, 500, 503 --------------------------------------------------------------------------------


@pytest.fixture
def stalled() -> Iterator[TestClient]:
    """An app whose projections do not run here, waiting at most 0.1 s for min_position,
    allowed one request at once, with a Hub nobody listens at."""
    hub = f"http://127.0.0.1:{free_port()}"
    ledger = make_ledger(
        "memory://",
        projections=False,
        min_position_timeout=0.1,
        rate_limit=0.01,
        rate_limit_burst=3,
        hf_endpoint=hub,
    )
    with TestClient(create_app(ledger=ledger), headers=bearer(TEST_ADMIN_KEY)) as client:
        yield client
    ledger.close()


def test_behind_unreachable_and_over_the_rate_are_their_own_kinds(stalled: TestClient) -> None:
    # Given a command the catalogue has not projected, and an unreachable Hub
    created = stalled.post(MODELS, json={"name": "m", "task": "t", "framework": "f"}).json()
    # When a read waits for it, a Hub model is imported, and the key is over its rate
    behind = stalled.get(f"{MODELS}/search", params={"min_position": created["position"]})
    hub_down = stalled.post(f"{MODELS}/import/huggingface", json={"repo_id": "acme/sentiment"})
    over = stalled.get(MODELS)
    # Then each is its own kind: retry later, each saying when
    expect(behind, 503, "not-yet-up-to-date", "min_position")
    expect(hub_down, 503, "provider-unavailable", None)
    expect(over, 429, "rate-limited", None)
    assert over.headers["retry-after"] and behind.headers["retry-after"]


def test_a_bug_of_ours_is_an_internal_error_without_internals(memory_ledger: Any) -> None:
    # Given a route that fails unexpectedly
    app = create_app(ledger=memory_ledger)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    # Then it is a 500 of its kind that tells nothing of the bug
    problem = expect(response, 500, "internal-error", None)
    assert "secret" not in response.text, problem
