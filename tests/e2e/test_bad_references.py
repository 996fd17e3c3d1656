"""Unknown or malformed ids, impossible deployments, bad If-Match / Idempotency-Key,
unknown routes and bad query parameters."""

from __future__ import annotations

from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.e2e.problems import (
    COMPLETE,
    CREATE,
    DELETE,
    DEPLOY,
    FAIL,
    MODEL_ENDPOINTS,
    MODELS,
    PATCH,
    PUT,
    ROLLBACK,
    TRAIN,
    UNDEPLOY,
    UNKNOWN_MODEL,
    VALID_BODIES,
    Subject,
    assert_not_server_error,
    assert_problem,
    endpoint_id,
    model_version,
    trained_model,
    unique_name,
)
from tests.support.reads import model_now

# -- ids in the path ------------------------------------------------------------------------------

MALFORMED_IDS = [
    "not-a-uuid",
    "123",
    UNKNOWN_MODEL[:-1],
    UNKNOWN_MODEL + "0",
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    "%20",
]


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
@pytest.mark.parametrize("endpoint", MODEL_ENDPOINTS, ids=endpoint_id)
def test_a_malformed_model_id_is_named(
    memory_client: TestClient, endpoint: tuple[str, str], bad_id: str
) -> None:
    # Given a model id that is not a UUID
    method, template = endpoint
    url = template.format(model=bad_id, run="some-run")
    # When any model endpoint is called with it (with a valid body)
    response = memory_client.request(method, url, json=VALID_BODIES.get(endpoint))
    # Then it is a 422 naming the path parameter
    assert_problem(response, 422, "path.model_id")


@pytest.mark.parametrize("endpoint", MODEL_ENDPOINTS, ids=endpoint_id)
def test_an_unknown_model_id_is_404(memory_client: TestClient, endpoint: tuple[str, str]) -> None:
    # Given a well-formed id that no model has
    method, template = endpoint
    url = template.format(model=UNKNOWN_MODEL, run="some-run")
    # When any model endpoint is called with it (with a valid body)
    response = memory_client.request(method, url, json=VALID_BODIES.get(endpoint))
    # Then it is a 404
    assert_problem(response, 404)


def test_model_ids_are_accepted_in_any_uuid_spelling(
    memory_client: TestClient, subject: Subject
) -> None:
    # Given a model, and its id in upper case and without hyphens
    spellings = [subject.model_id.upper(), UUID(subject.model_id).hex]
    # When it is read with those spellings
    # Then they all find the same model
    for spelling in spellings:
        response = model_now(memory_client, spelling)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == subject.model_id


@pytest.mark.parametrize("run_id", ["no-such-run", "00000000-0000-4000-8000-000000000001"])
@pytest.mark.parametrize("endpoint", [COMPLETE, FAIL], ids=endpoint_id)
def test_an_unknown_run_id_is_404(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str], run_id: str
) -> None:
    # Given a model with a running training run
    method, template = endpoint
    url = template.format(model=subject.model_id, run=run_id)
    # When another run id is completed or failed
    response = memory_client.request(method, url, json=VALID_BODIES[endpoint])
    # Then it is a 404, and the real run is untouched
    assert_problem(response, 404)
    model = model_now(memory_client, subject.model_id).json()
    assert model["status"] == "training", model


@pytest.mark.parametrize("endpoint", [COMPLETE, FAIL], ids=endpoint_id)
def test_an_over_long_run_id_is_named(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str]
) -> None:
    # Given a run id longer than the 100 characters a run id may have
    method, template = endpoint
    url = template.format(model=subject.model_id, run="r" * 101)
    # When it is completed or failed
    response = memory_client.request(method, url, json=VALID_BODIES[endpoint])
    # Then it is refused naming the path parameter (not a 500)
    assert_problem(response, 422, "path.run_id")


# -- deployments ----------------------------------------------------------------------------------


def test_deploying_a_version_that_was_never_trained_names_model_version(
    memory_client: TestClient,
) -> None:
    # Given a model with one trained version
    model_id = trained_model(memory_client)
    # When version 2 is deployed
    response = memory_client.post(
        f"{MODELS}/{model_id}/deploy", json={"environment": "production", "model_version": 2}
    )
    # Then it is a 422 naming model_version
    assert_problem(response, 422, field_prefix="model_version")


def test_deploying_without_a_trained_version_is_a_conflict(
    memory_client: TestClient, subject: Subject
) -> None:
    # Given a model whose only training run is still running
    # When it is deployed
    response = memory_client.post(subject.path(DEPLOY[1]), json={"environment": "production"})
    # Then it is a 409: the request is fine, the model's state forbids it
    assert_problem(response, 409)


@pytest.mark.parametrize("endpoint", [UNDEPLOY, ROLLBACK], ids=endpoint_id)
def test_undeploying_or_rolling_back_where_not_deployed_is_a_conflict(
    memory_client: TestClient, endpoint: tuple[str, str]
) -> None:
    # Given a trained model that was never deployed
    model_id = trained_model(memory_client)
    method, template = endpoint
    # When it is undeployed or rolled back in production
    response = memory_client.request(
        method, template.format(model=model_id), json={"environment": "production"}
    )
    # Then it is a 409
    assert_problem(response, 409)


# -- If-Match and Idempotency-Key -----------------------------------------------------------------


@pytest.mark.parametrize(
    "if_match",
    ["abc", '"-1"', '"1.5"', "W/", '""', '"99999999999999999999"', "1, 2", ""],
)
def test_a_malformed_if_match_is_a_400_naming_it(
    memory_client: TestClient, subject: Subject, if_match: str
) -> None:
    # Given a model
    # When it is updated with an If-Match that is not an ETag
    response = memory_client.patch(
        subject.path(PATCH[1]), json={"description": "x"}, headers={"If-Match": if_match}
    )
    # Then it is a 400 naming If-Match
    assert_problem(response, 400, "If-Match")


@pytest.mark.parametrize("endpoint", [PATCH, PUT, DELETE, TRAIN, DEPLOY], ids=endpoint_id)
def test_a_stale_if_match_is_a_412_and_changes_nothing(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str]
) -> None:
    # Given a model at some version
    method, template = endpoint
    version = model_version(memory_client, subject.model_id)
    # When a command says it expects an earlier version
    response = memory_client.request(
        method,
        subject.path(template),
        json=VALID_BODIES.get(endpoint),
        headers={"If-Match": f'"{version - 1}"'},
    )
    # Then it is a 412 and the model did not change
    assert_problem(response, 412)
    assert model_version(memory_client, subject.model_id) == version


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("has space", id="space"),
        pytest.param("", id="empty"),
        pytest.param("k" * 201, id="too-long"),
        pytest.param("tab\tkey", id="tab"),
        pytest.param("ключ".encode(), id="non-ascii"),
    ],
)
def test_a_malformed_idempotency_key_is_a_400_naming_it(
    memory_client: TestClient, key: str | bytes
) -> None:
    # Given a create body
    body = {**VALID_BODIES[CREATE], "name": unique_name()}
    # When it is sent with an Idempotency-Key that is not 1-200 visible ASCII characters
    response = memory_client.post(MODELS, json=body, headers={"Idempotency-Key": key})  # type: ignore[arg-type]
    # Then it is a 400 naming the header
    assert_problem(response, 400, "Idempotency-Key")


def test_an_idempotency_key_reused_with_another_body_is_a_422(memory_client: TestClient) -> None:
    # Given a model created with an Idempotency-Key
    key = {"Idempotency-Key": f"create-{unique_name()}"}
    first = memory_client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "one"}, headers=key)
    assert first.status_code == 201, first.text
    # When the same key comes with a different body
    second = memory_client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "two"}, headers=key)
    # Then it is a 422 naming the key, and the second model was not created
    assert_problem(second, 422, "Idempotency-Key")
    unused = memory_client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "two"})
    assert unused.status_code == 201, unused.text


def test_an_idempotency_key_reused_on_another_endpoint_is_a_422(
    memory_client: TestClient, subject: Subject
) -> None:
    # Given a key used to update a model
    key = {"Idempotency-Key": f"key-{unique_name()}"}
    first = memory_client.patch(subject.path(PATCH[1]), json={"description": "x"}, headers=key)
    assert first.status_code == 200, first.text
    # When the same key is used to start training
    second = memory_client.post(subject.path(TRAIN[1]), json={"dataset": "d"}, headers=key)
    # Then it is a 422 naming the key
    assert_problem(second, 422, "Idempotency-Key")


# -- routes, methods and query parameters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/nope"),
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v2/models"),
        ("POST", f"{MODELS}/{UNKNOWN_MODEL}/nope"),
        ("POST", f"{MODELS}/{UNKNOWN_MODEL}/training-runs/r/nope"),
    ],
)
def test_an_unknown_route_is_a_404_problem(
    memory_client: TestClient, method: str, url: str
) -> None:
    # Given a path the API does not have
    # When it is requested
    response = memory_client.request(method, url)
    # Then it is a 404 problem
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", "/health", {"GET"}),
        ("PUT", MODELS, {"POST"}),
        ("POST", f"{MODELS}/{UNKNOWN_MODEL}", {"GET", "PATCH", "PUT", "DELETE"}),
        ("GET", f"{MODELS}/{UNKNOWN_MODEL}/train", {"POST"}),
        ("DELETE", f"{MODELS}/{UNKNOWN_MODEL}/history", {"GET"}),
        ("GET", f"{MODELS}/{UNKNOWN_MODEL}/training-runs/r/complete", {"POST"}),
    ],
)
def test_a_wrong_method_is_a_405_problem_with_allow(
    memory_client: TestClient, method: str, url: str, allowed: set[str]
) -> None:
    # Given a path that exists for other methods
    # When it is called with a method it does not support
    response = memory_client.request(method, url)
    # Then it is a 405 problem whose Allow header names a method the path does support
    assert_problem(response, 405)
    listed = {name.strip() for name in response.headers.get("allow", "").split(",")}
    assert listed & allowed, response.headers


# Every route that answers "as of" a time, and what else it needs.
AS_OF_ROUTES = [
    (MODELS + "/{model}", {}),
    (MODELS + "/{model}/deployments", {}),
    (MODELS, {}),
    (MODELS + "/search", {}),
    (MODELS + "/statistics", {}),
    (MODELS + "/top-performing", {"metric": "accuracy"}),
    ("/api/v1/deployments", {}),
]
BAD_AS_OF = [
    "2026-01-01T00:00:00",  # no zone
    "2026-01-01 12:00",
    "2026-01-01",  # a date
    "yesterday",
    "2026-13-01T00:00:00Z",
    "",
    "1" * 30,
]


@pytest.mark.parametrize(("route", "params"), AS_OF_ROUTES, ids=[r for r, _ in AS_OF_ROUTES])
def test_a_bad_as_of_is_the_same_422_naming_it_everywhere(
    memory_client: TestClient, subject: Subject, route: str, params: dict[str, str]
) -> None:
    # Given a model, and a route that answers as of a time
    url = route.format(model=subject.model_id)
    for as_of in BAD_AS_OF:
        # When it is asked as of a time without a zone, or of something that is not a time
        response = memory_client.get(url, params={**params, "as_of": as_of})
        # Then every route gives the one answer: a 422 naming as_of
        assert_problem(response, 422, "query.as_of")


def test_as_of_and_at_version_together_are_a_422_naming_as_of(
    memory_client: TestClient, subject: Subject
) -> None:
    # Given a model
    # When it is asked for at a version and as of a time at once
    params = {"at_version": "1", "as_of": "2026-01-01T00:00:00Z"}
    response = memory_client.get(f"{MODELS}/{subject.model_id}", params=params)
    # Then it is the same 422 naming as_of
    assert_problem(response, 422, "query.as_of")


@pytest.mark.parametrize(
    "as_of", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00Z"]
)
def test_extreme_as_of_times_do_not_break_the_server(
    memory_client: TestClient, subject: Subject, as_of: str
) -> None:
    # Given a model
    # When it is read as of a time at the edge of what a datetime can hold
    response = memory_client.get(f"{MODELS}/{subject.model_id}", params={"as_of": as_of})
    # Then the answer is the model or a 404, never a 500
    assert response.status_code in (200, 404), response.text
    assert_not_server_error(response)


@pytest.mark.parametrize("at_version", ["0", "-1", "abc", "1.5", str(10**10)])
def test_a_bad_at_version_is_named(
    memory_client: TestClient, subject: Subject, at_version: str
) -> None:
    # Given a model
    # When it is read at a version that cannot exist
    response = memory_client.get(f"{MODELS}/{subject.model_id}", params={"at_version": at_version})
    # Then it is a 422 naming at_version
    assert_problem(response, 422, "query.at_version")
