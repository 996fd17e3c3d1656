"""Bad input over HTTP: never a 500, always RFC 9457 problem+json naming the field at fault.

Most stories run on the in-memory store (fast); a representative set runs on both real
stores (SQLite and PostgreSQL) through the `client` fixture.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from commands.messages import MAX_TAGS
from tests.conftest import make_ledger

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
    response = client.get(f"{MODELS}/{model_id}")
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


@pytest.fixture
def subject(memory_client: TestClient) -> Subject:
    model_id = create_model(memory_client)
    return Subject(model_id, start_training(memory_client, model_id))


@pytest.fixture
def capped_client() -> Iterator[TestClient]:
    """An app whose body cap is 2 KiB."""
    ledger = make_ledger("memory://", max_body_bytes=2048)
    with TestClient(create_app(ledger=ledger)) as test_client:
        yield test_client
    ledger.close()


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


# -- missing and ill-typed fields -----------------------------------------------------------------

MISSING_FIELDS = [
    pytest.param(CREATE, {}, ["body.name", "body.task", "body.framework"], id="create"),
    pytest.param(CREATE, {"name": "x", "task": "t"}, ["body.framework"], id="create-framework"),
    pytest.param(TRAIN, {}, ["body.dataset"], id="train"),
    pytest.param(TRAIN, {"hyperparameters": {"lr": 0.1}}, ["body.dataset"], id="train-dataset"),
    pytest.param(COMPLETE, {}, ["body.metrics"], id="complete"),
    pytest.param(COMPLETE, {"artifact_uri": "s3://m/1"}, ["body.metrics"], id="complete-uri"),
    pytest.param(FAIL, {}, ["body.reason"], id="fail"),
    pytest.param(DEPLOY, {}, ["body.environment"], id="deploy"),
    pytest.param(DEPLOY, {"model_version": 1}, ["body.environment"], id="deploy-version"),
    pytest.param(UNDEPLOY, {}, ["body.environment"], id="undeploy"),
    pytest.param(ROLLBACK, {}, ["body.environment"], id="rollback"),
]


@pytest.mark.parametrize(("endpoint", "body", "fields"), MISSING_FIELDS)
def test_a_missing_required_field_is_named(
    memory_client: TestClient,
    subject: Subject,
    endpoint: tuple[str, str],
    body: dict[str, Any],
    fields: list[str],
) -> None:
    # Given a model with a running training run
    method, template = endpoint
    # When a command arrives without a required field
    response = memory_client.request(method, subject.path(template), json=body)
    # Then it is refused with 422, naming every missing field
    problem = assert_problem(response, 422)
    assert set(fields) <= set(error_fields(problem)), problem


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=endpoint_id)
def test_a_command_without_any_body_names_the_body(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str]
) -> None:
    # Given a command endpoint that takes a JSON body
    method, template = endpoint
    # When the request has no body at all
    response = memory_client.request(method, subject.path(template))
    # Then it is refused with 422 naming the body
    assert_problem(response, 422, "body")


ILL_TYPED = [
    pytest.param(CREATE, {"name": 5, "task": "t", "framework": "f"}, "body.name", id="c-name"),
    pytest.param(CREATE, {"name": "x", "task": ["t"], "framework": "f"}, "body.task", id="c-task"),
    pytest.param(
        CREATE, {"name": "x", "task": "t", "framework": {"f": 1}}, "body.framework", id="c-fw"
    ),
    pytest.param(
        CREATE,
        {"name": "x", "task": "t", "framework": "f", "tags": "a,b"},
        "body.tags",
        id="c-tags",
    ),
    pytest.param(
        CREATE,
        {"name": "x", "task": "t", "framework": "f", "configuration": [1, 2]},
        "body.configuration",
        id="c-configuration",
    ),
    pytest.param(
        CREATE, {"name": "x", "task": "t", "framework": "f", "owner": 7}, "body.owner", id="c-owner"
    ),
    pytest.param(
        CREATE,
        {"name": "x", "task": "t", "framework": "f", "project": "no spaces allowed"},
        "body.project",
        id="c-project",
    ),
    pytest.param(
        CREATE, {"name": "x", "task": "not a task!", "framework": "f"}, "body.task", id="c-task-pat"
    ),
    pytest.param(PATCH, {"tags": "fraud"}, "body.tags", id="patch-tags"),
    pytest.param(PATCH, {"description": 3}, "body.description", id="patch-description"),
    pytest.param(PUT, {"configuration": "x=1"}, "body.configuration", id="put-configuration"),
    pytest.param(PUT, {"framework": False}, "body.framework", id="put-framework"),
    pytest.param(TRAIN, {"dataset": 1}, "body.dataset", id="train-dataset"),
    pytest.param(
        TRAIN, {"dataset": "d", "hyperparameters": "lr=1"}, "body.hyperparameters", id="train-hp"
    ),
    pytest.param(TRAIN, {"dataset": "d", "backend": "gpu-farm"}, "body.backend", id="train-be"),
    pytest.param(COMPLETE, {"metrics": [0.9]}, "body.metrics", id="complete-metrics"),
    pytest.param(
        COMPLETE,
        {"metrics": {"accuracy": 0.9}, "artifact_uri": 7},
        "body.artifact_uri",
        id="complete-uri",
    ),
    pytest.param(FAIL, {"reason": ["oom"]}, "body.reason", id="fail-reason"),
    pytest.param(FAIL, {"reason": "   "}, "body.reason", id="fail-blank-reason"),
    pytest.param(
        DEPLOY, {"environment": "prod", "model_version": "latest"}, "body.model_version", id="d-v"
    ),
    pytest.param(
        DEPLOY, {"environment": "prod", "model_version": 0}, "body.model_version", id="d0"
    ),
    pytest.param(
        DEPLOY, {"environment": "prod", "model_version": 1.5}, "body.model_version", id="d-float"
    ),
    pytest.param(DEPLOY, {"environment": True}, "body.environment", id="deploy-env"),
    pytest.param(
        DEPLOY, {"environment": "prod", "endpoint_url": 1}, "body.endpoint_url", id="deploy-url"
    ),
    pytest.param(UNDEPLOY, {"environment": 1}, "body.environment", id="undeploy-env"),
    pytest.param(ROLLBACK, {"environment": "not an env!"}, "body.environment", id="rollback-env"),
]


@pytest.mark.parametrize(("endpoint", "body", "field"), ILL_TYPED)
def test_an_ill_typed_field_is_named(
    memory_client: TestClient,
    subject: Subject,
    endpoint: tuple[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    # Given a model with a running training run
    method, template = endpoint
    version_before = model_version(memory_client, subject.model_id)
    # When a command arrives with a field of the wrong type or shape
    response = memory_client.request(method, subject.path(template), json=body)
    # Then it is refused with 422 naming that field, and nothing was recorded
    assert_problem(response, 422, field)
    assert model_version(memory_client, subject.model_id) == version_before


def test_archiving_with_an_over_long_reason_names_the_query_parameter(
    memory_client: TestClient, subject: Subject
) -> None:
    # Given a model
    # When it is archived with a reason longer than 1000 characters
    response = memory_client.delete(f"{MODELS}/{subject.model_id}", params={"reason": "x" * 1001})
    # Then the reason is refused by name
    assert_problem(response, 422, "query.reason")


# -- bodies that are not JSON objects -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{", id="truncated"),
        pytest.param("{'name': 'x'}", id="single-quotes"),
        pytest.param('{"name": }', id="missing-value"),
        pytest.param('{"name": "x",}', id="trailing-comma"),
        pytest.param("name=x&task=t", id="form-encoded"),
        pytest.param('{"name": "x"} trailing', id="trailing-garbage"),
    ],
)
@pytest.mark.parametrize("endpoint", [CREATE, PATCH, TRAIN, COMPLETE, DEPLOY], ids=endpoint_id)
def test_malformed_json_is_a_400_naming_the_body(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str], text: str
) -> None:
    # Given a command endpoint
    method, template = endpoint
    # When the body does not parse as JSON
    response = raw_json(memory_client, method, subject.path(template), text)
    # Then it is a 400 that blames the body
    assert_problem(response, 400, "body")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"name": "\xff\xfe"}', id="invalid-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100k-deep"),
    ],
)
def test_an_undecodable_body_is_a_400_naming_the_body(
    memory_client: TestClient, content: bytes
) -> None:
    # Given the create endpoint
    # When the body is not UTF-8, or nests deeper than any parser will follow
    response = raw_json(memory_client, "POST", MODELS, content)
    # Then it is a 400 like any other malformed JSON, and it blames the body
    assert_problem(response, 400, "body")


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "42", "null", "true", "[]"])
@pytest.mark.parametrize("endpoint", [CREATE, PUT, TRAIN, FAIL, UNDEPLOY], ids=endpoint_id)
def test_a_json_body_that_is_not_an_object_is_named(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str], text: str
) -> None:
    # Given a command endpoint
    method, template = endpoint
    # When the body is valid JSON but not an object
    response = raw_json(memory_client, method, subject.path(template), text)
    # Then it is a 422 naming the body
    assert_problem(response, 422, "body")


def test_a_body_sent_as_plain_text_is_refused(memory_client: TestClient) -> None:
    # Given a well-formed create body
    body = json.dumps(VALID_BODIES[CREATE])
    # When it is sent with a non-JSON content type
    response = memory_client.post(MODELS, content=body, headers={"content-type": "text/plain"})
    # Then it is refused with problem+json, not a 500
    assert response.status_code in (400, 415, 422), response.text
    assert_problem(response, response.status_code)


# -- metrics --------------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_a_non_finite_metric_is_refused_by_name(
    memory_client: TestClient, subject: Subject, literal: str
) -> None:
    # Given a running training run
    url = subject.path(COMPLETE[1])
    # When it completes with a metric that is not a finite number (Python's json accepts these)
    response = raw_json(memory_client, "POST", url, f'{{"metrics": {{"accuracy": {literal}}}}}')
    # Then the metric is refused by name, and the run can still complete properly
    assert_problem(response, 422, "body.metrics.accuracy")
    assert memory_client.post(url, json={"metrics": {"accuracy": 0.9}}).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param("0.9", id="numeric-string"),
        pytest.param("high", id="word"),
        pytest.param(None, id="null"),
        pytest.param([0.9], id="list"),
        pytest.param({"value": 0.9}, id="object"),
        pytest.param(10**400, id="huge-integer"),
    ],
)
def test_a_metric_that_is_not_a_number_is_refused_by_name(
    memory_client: TestClient, subject: Subject, value: Any
) -> None:
    # Given a running training run
    url = subject.path(COMPLETE[1])
    # When it completes with a metric that is a boolean, a string or a structure
    response = raw_json(memory_client, "POST", url, json.dumps({"metrics": {"accuracy": value}}))
    # Then the metric is refused by name and no model version was created
    assert_problem(response, 422, "body.metrics.accuracy")
    model = memory_client.get(f"{MODELS}/{subject.model_id}").json()
    assert model["versions"] == [], model


@pytest.mark.parametrize("name", ["", "acc\n", "acc\x00", "x" * 101])
def test_a_bad_metric_name_is_refused(
    memory_client: TestClient, subject: Subject, name: str
) -> None:
    # Given a running training run
    # When a metric's name is empty, too long or has control characters
    response = memory_client.post(subject.path(COMPLETE[1]), json={"metrics": {name: 0.5}})
    # Then the metrics are refused by name
    assert_problem(response, 422, field_prefix="body.metrics")


def test_too_many_metrics_are_refused(memory_client: TestClient, subject: Subject) -> None:
    # Given a running training run
    metrics = {f"m{i}": float(i) for i in range(201)}
    # When it completes with more than 200 metrics
    response = memory_client.post(subject.path(COMPLETE[1]), json={"metrics": metrics})
    # Then the metrics are refused by name
    assert_problem(response, 422, "body.metrics")


# -- free-form JSON objects (configuration, hyperparameters) --------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_in_the_configuration_is_refused(
    memory_client: TestClient, literal: str
) -> None:
    # Given a create body whose configuration holds a non-finite number
    text = (
        f'{{"name": "{unique_name()}", "task": "t", "framework": "f",'
        f' "configuration": {{"dropout": {literal}}}}}'
    )
    # When it is sent
    response = raw_json(memory_client, "POST", MODELS, text)
    # Then it is refused by name (it could never be served back as JSON)
    assert_problem(response, 422, field_prefix="body.configuration")


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
def test_a_non_finite_hyperparameter_is_refused(
    memory_client: TestClient, subject: Subject, literal: str
) -> None:
    # Given a model
    text = f'{{"dataset": "d", "hyperparameters": {{"lr": {literal}}}}}'
    # When training starts with a non-finite hyperparameter
    response = raw_json(memory_client, "POST", subject.path(TRAIN[1]), text)
    # Then it is refused by name, and the model still reads back
    assert_problem(response, 422, field_prefix="body.hyperparameters")
    assert memory_client.get(f"{MODELS}/{subject.model_id}").status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "text", "field"),
    [
        pytest.param(
            CREATE,
            '{"name": "s1", "task": "t", "framework": "f", "configuration": {"\\ud800": 1}}',
            "body.configuration",
            id="configuration-key",
        ),
        pytest.param(
            CREATE,
            '{"name": "s2", "task": "t", "framework": "f", "configuration": {"k": "\\udfff"}}',
            "body.configuration",
            id="configuration-value",
        ),
        pytest.param(
            CREATE,
            '{"name": "s3", "task": "t", "framework": "f", "description": "\\ud800"}',
            "body.description",
            id="description",
        ),
        pytest.param(
            TRAIN,
            '{"dataset": "d", "hyperparameters": {"\\ud800": 1}}',
            "body.hyperparameters",
            id="hyperparameters-key",
        ),
        pytest.param(
            TRAIN,
            '{"dataset": "d", "hyperparameters": {"lr": ["\\udfff"]}}',
            "body.hyperparameters",
            id="hyperparameters-value",
        ),
        pytest.param(
            PATCH,
            '{"configuration": {"nested": {"\\ud83d": true}}}',
            "body.configuration",
            id="patch-configuration",
        ),
    ],
)
def test_a_lone_surrogate_escape_is_refused(
    memory_client: TestClient,
    subject: Subject,
    endpoint: tuple[str, str],
    text: str,
    field: str,
) -> None:
    # Given a body with a lone UTF-16 surrogate escape (valid JSON, but not encodable as UTF-8)
    method, template = endpoint
    # When it is sent
    response = raw_json(memory_client, method, subject.path(template), text)
    # Then the field is refused by name rather than failing when the event is stored
    assert_problem(response, 422, field_prefix=field)


# -- unknown fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=endpoint_id)
def test_an_unknown_field_is_refused_by_name(
    memory_client: TestClient, subject: Subject, endpoint: tuple[str, str]
) -> None:
    # Given an otherwise valid body with one field the API does not know
    method, template = endpoint
    body = {**VALID_BODIES[endpoint], "surprise": 1}
    version_before = model_version(memory_client, subject.model_id)
    # When it is sent
    response = memory_client.request(method, subject.path(template), json=body)
    # Then it is refused naming the unknown field, and nothing was recorded
    assert_problem(response, 422, "body.surprise")
    assert model_version(memory_client, subject.model_id) == version_before


def test_a_misspelt_field_is_refused_not_ignored(memory_client: TestClient) -> None:
    # Given a create body where "description" is misspelt
    body = {**VALID_BODIES[CREATE], "name": unique_name(), "descripton": "typo"}
    # When it is sent
    response = memory_client.post(MODELS, json=body)
    # Then the typo is named rather than silently dropped
    assert_problem(response, 422, "body.descripton")


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
        response = memory_client.get(f"{MODELS}/{spelling}")
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
    model = memory_client.get(f"{MODELS}/{subject.model_id}").json()
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


# -- oversized bodies -----------------------------------------------------------------------------


def test_a_body_over_the_cap_with_content_length_is_413(capped_client: TestClient) -> None:
    # Given an app capped at 2 KiB and a create body of ~3 KiB
    name = unique_name()
    body = {**VALID_BODIES[CREATE], "name": name, "description": "x" * 3000}
    # When it is sent with its Content-Length
    response = capped_client.post(MODELS, json=body)
    # Then it is a 413 problem, and nothing was stored
    assert "content-length" in response.request.headers
    assert_problem(response, 413)
    retry = capped_client.post(MODELS, json={**VALID_BODIES[CREATE], "name": name})
    assert retry.status_code == 201, retry.text


def test_a_streamed_body_over_the_cap_is_413(capped_client: TestClient) -> None:
    # Given an app capped at 2 KiB and a body streamed in chunks, with no Content-Length
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "streamed", "task": "t", "framework": "f", "description": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    # When it is sent
    response = capped_client.post(MODELS, content=chunks(), headers=JSON_HEADERS)
    # Then it is a 413 problem, and nothing was stored
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    retry = capped_client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "streamed"})
    assert retry.status_code == 201, retry.text


def test_a_body_just_under_the_cap_is_accepted(capped_client: TestClient) -> None:
    # Given an app capped at 2 KiB and a create body just under it
    body = {**VALID_BODIES[CREATE], "name": unique_name(), "description": "x" * 1900}
    assert len(json.dumps(body)) < 2048
    # When it is sent
    response = capped_client.post(MODELS, json=body)
    # Then it is accepted
    assert response.status_code == 201, response.text


def test_a_body_over_the_cap_is_413_on_every_command(capped_client: TestClient) -> None:
    # Given a model in a capped app
    model_id = create_model(capped_client)
    padding = "x" * 3000
    oversized = {
        PATCH: {"description": padding},
        TRAIN: {"dataset": "d", "hyperparameters": {"blob": padding}},
        DEPLOY: {"environment": "production", "endpoint_url": padding},
    }
    for (method, template), body in oversized.items():
        # When each is sent over the cap
        response = capped_client.request(method, template.format(model=model_id), json=body)
        # Then it is a 413
        assert_problem(response, 413)


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
    response = memory_client.post(MODELS, json=body, headers={"Idempotency-Key": key})
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


# -- limits on strings and lists ------------------------------------------------------------------

TOO_BIG_OR_DIRTY = [
    pytest.param({"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]}, "body.tags", id="51-tags"),
    pytest.param({"tags": ["x" * 65]}, "body.tags.0", id="tag-too-long"),
    pytest.param({"tags": ["ok", ""]}, "body.tags.1", id="empty-tag"),
    pytest.param({"tags": ["a\tb"]}, "body.tags.0", id="tag-tab"),
    pytest.param({"name": "x" * 201}, "body.name", id="name-too-long"),
    pytest.param({"name": ""}, "body.name", id="name-empty"),
    pytest.param({"name": "   "}, "body.name", id="name-blank"),
    pytest.param({"name": "fraud\x00detector"}, "body.name", id="name-nul"),
    pytest.param({"name": "fraud\ndetector"}, "body.name", id="name-newline"),
    pytest.param({"name": "\x1b[31mred"}, "body.name", id="name-ansi-escape"),
    pytest.param({"name": "zero\u200bwidth"}, "body.name", id="name-zero-width"),
    pytest.param({"name": "rtl\u202eoverride"}, "body.name", id="name-bidi-override"),
    pytest.param({"description": "x" * 10_001}, "body.description", id="description-too-long"),
    pytest.param({"owner": "x" * 1001}, "body.owner", id="owner-too-long"),
    pytest.param({"owner": "a\x07b"}, "body.owner", id="owner-bell"),
    pytest.param({"project": "p" * 101}, "body.project", id="project-too-long"),
    pytest.param({"task": "t" * 65}, "body.task", id="task-too-long"),
    pytest.param({"framework": "py torch"}, "body.framework", id="framework-space"),
]


@pytest.mark.parametrize(("override", "field"), TOO_BIG_OR_DIRTY)
def test_too_many_too_long_or_dirty_values_are_named(
    memory_client: TestClient, override: dict[str, Any], field: str
) -> None:
    # Given a create body with one value over a limit or with control characters
    body = {**VALID_BODIES[CREATE], "name": unique_name(), **override}
    # When it is sent
    response = memory_client.post(MODELS, json=body)
    # Then that value is named
    assert_problem(response, 422, field)


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        pytest.param(TRAIN, {"dataset": "x" * 1001}, "body.dataset", id="dataset-too-long"),
        pytest.param(TRAIN, {"dataset": "d\x00"}, "body.dataset", id="dataset-nul"),
        pytest.param(FAIL, {"reason": "oom\x07"}, "body.reason", id="reason-bell"),
        pytest.param(FAIL, {"reason": "x" * 1001}, "body.reason", id="reason-too-long"),
        pytest.param(
            COMPLETE,
            {"metrics": {"a": 1.0}, "artifact_uri": "s" * 2001},
            "body.artifact_uri",
            id="uri-too-long",
        ),
        pytest.param(DEPLOY, {"environment": "e" * 64}, "body.environment", id="env-too-long"),
        pytest.param(PATCH, {"tags": ["x"] * 51 + ["y"]}, "body.tags", id="patch-52-tags"),
    ],
)
def test_limits_hold_on_every_command(
    memory_client: TestClient,
    subject: Subject,
    endpoint: tuple[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    # Given a model with a running training run
    method, template = endpoint
    # When a command carries a value over a limit or with control characters
    response = memory_client.request(method, subject.path(template), json=body)
    # Then that value is named
    assert_problem(response, 422, field)


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


@pytest.mark.parametrize("as_of", ["2026-01-01T00:00:00", "2026-01-01 12:00", "2026-01-01"])
def test_as_of_without_a_time_zone_is_a_400_naming_it(
    memory_client: TestClient, subject: Subject, as_of: str
) -> None:
    # Given a model
    # When it is read as of a time without a time zone
    response = memory_client.get(f"{MODELS}/{subject.model_id}", params={"as_of": as_of})
    # Then it is a 400 naming as_of
    problem = assert_problem(response, 400)
    assert any(field.endswith("as_of") for field in error_fields(problem)), problem


@pytest.mark.parametrize("as_of", ["yesterday", "2026-13-01T00:00:00Z", "", "1" * 30])
def test_an_unparseable_as_of_is_named(
    memory_client: TestClient, subject: Subject, as_of: str
) -> None:
    # Given a model
    # When it is read as of something that is not a time
    response = memory_client.get(f"{MODELS}/{subject.model_id}", params={"as_of": as_of})
    # Then it is refused naming as_of
    assert response.status_code in (400, 422), response.text
    problem = assert_problem(response, response.status_code)
    assert any(field.endswith("as_of") for field in error_fields(problem)), problem


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


# -- property: random JSON never yields a 500 -----------------------------------------------------


def _is_text(value: object) -> bool:
    return isinstance(value, str)


SURROGATES = "\ud800\udbff\udc00\udfff"
# Values that are valid JSON text to Python's parser but troublesome downstream, drawn often.
troublesome = st.sampled_from(
    [math.nan, math.inf, -math.inf, 10**30, "\ud800", "lone \udfff", "\x00", "\n", ""]
)
json_text = st.text(alphabet=st.characters() | st.sampled_from(SURROGATES), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | json_text
    | troublesome
    | st.sampled_from(["classification", "pytorch", "default", " ", "x" * 300])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(
    st.sampled_from(["layers", "dropout"]) | json_text | troublesome.filter(_is_text),
    troublesome | json_values,
    min_size=1,
    max_size=3,
)
# Arbitrary JSON, and values near each field's own type, for every field of the create body.
CREATE_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": json_text | json_values,
    "project": json_text | json_values,
    "description": json_text | json_values,
    "task": json_text | json_values,
    "framework": json_text | json_values,
    "tags": st.lists(json_text, max_size=60) | json_values,
    "configuration": json_objects | json_values,
    "owner": json_text | json_values,
    "unexpected": json_values,
}
FUZZ = settings(
    max_examples=60,
    derandomize=True,  # the same examples every run: a failure here is never a fluke
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("field", CREATE_FIELD_VALUES)
@FUZZ
@given(data=st.data())
def test_any_json_value_in_any_create_field_never_yields_a_500(
    memory_client: TestClient, field: str, data: st.DataObject
) -> None:
    # Given a valid create body with one field replaced by an arbitrary JSON value
    value = data.draw(CREATE_FIELD_VALUES[field], label=field)
    body: dict[str, Any] = {**VALID_BODIES[CREATE], "name": unique_name("fuzz"), field: value}
    # When it is sent (as raw JSON text: NaN, Infinity and lone surrogates included)
    response = raw_json(memory_client, "POST", MODELS, json.dumps(body))
    # Then it is created, a conflict, or a 422 naming that field; never a 500
    assert response.status_code in (201, 409, 422), response.text
    if response.status_code == 422:
        assert_problem(response, 422, field_prefix=f"body.{field}")
    elif response.status_code == 409:
        assert_problem(response, 409)
    else:
        # and what was accepted can be read back as JSON
        model_id = response.json()["id"]
        assert memory_client.get(f"{MODELS}/{model_id}").status_code == 200
        assert memory_client.get(f"{MODELS}/{model_id}/history").status_code == 200


metric_names = st.sampled_from(["accuracy", "loss", "f1"]) | json_text
metric_values = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.sampled_from(["0.9", "1e3", "NaN", ""])
    | json_values
)


@FUZZ
@given(metrics=st.dictionaries(metric_names, metric_values, max_size=3))
def test_any_metrics_object_never_yields_a_500(
    memory_client: TestClient, metrics: dict[str, Any]
) -> None:
    # Given a model with a running training run
    model_id = create_model(memory_client)
    run_id = start_training(memory_client, model_id)
    url = f"{MODELS}/{model_id}/training-runs/{run_id}/complete"
    # When it completes with arbitrary metrics
    response = raw_json(memory_client, "POST", url, json.dumps({"metrics": metrics}))
    # Then it completes or is a 422 naming the metrics; never a 500
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_problem(response, 422, field_prefix="body.metrics")
    else:
        # and only finite numbers (not booleans, not strings) were accepted
        assert all(is_finite_number(value) for value in metrics.values()), metrics
        model = memory_client.get(f"{MODELS}/{model_id}")
        assert model.status_code == 200, model.text


@FUZZ
@given(
    if_match=st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)),
    key=st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=210),
)
def test_any_printable_header_values_never_yield_a_500(
    memory_client: TestClient, if_match: str | None, key: str | None
) -> None:
    # Given a model
    model_id = create_model(memory_client)
    headers = {
        name: value
        for name, value in (("If-Match", if_match), ("Idempotency-Key", key))
        if value is not None
    }
    # When it is updated with arbitrary If-Match and Idempotency-Key headers
    response = memory_client.patch(
        f"{MODELS}/{model_id}", json={"description": "x"}, headers=headers
    )
    # Then it is applied, or a 400/412/422 problem; never a 500
    assert response.status_code in (200, 400, 412, 422), response.text
    assert_not_server_error(response)


# -- the same stories on both real stores (SQLite and PostgreSQL) ---------------------------------


class TestOnRealStores:
    """A representative subset, against `client` (parametrized over sqlite and postgres)."""

    def test_missing_fields_are_named(self, client: TestClient) -> None:
        # Given an empty create body
        # When it is sent
        response = client.post(MODELS, json={})
        # Then every required field is named
        problem = assert_problem(response, 422)
        assert {"body.name", "body.task", "body.framework"} <= set(error_fields(problem))

    def test_malformed_json_is_400(self, client: TestClient) -> None:
        # Given a body that is not JSON
        # When it is sent
        response = raw_json(client, "POST", MODELS, '{"name": ')
        # Then it is a 400 naming the body
        assert_problem(response, 400, "body")

    def test_a_nan_metric_is_named(self, client: TestClient) -> None:
        # Given a running training run
        model_id = create_model(client)
        run_id = start_training(client, model_id)
        url = f"{MODELS}/{model_id}/training-runs/{run_id}/complete"
        # When it completes with NaN
        response = raw_json(client, "POST", url, '{"metrics": {"loss": NaN}}')
        # Then the metric is named and the run is still running
        assert_problem(response, 422, "body.metrics.loss")
        assert client.get(f"{MODELS}/{model_id}").json()["status"] == "training"

    def test_unknown_model_and_run_are_404(self, client: TestClient) -> None:
        # Given a model with a running training run
        model_id = create_model(client)
        start_training(client, model_id)
        # When an unknown model is trained, and an unknown run of the model is completed
        unknown_model = client.post(f"{MODELS}/{UNKNOWN_MODEL}/train", json={"dataset": "d"})
        unknown_run = client.post(
            f"{MODELS}/{model_id}/training-runs/nope/complete", json={"metrics": {"a": 1.0}}
        )
        # Then both are 404
        assert_problem(unknown_model, 404)
        assert_problem(unknown_run, 404)

    def test_a_malformed_model_id_is_named(self, client: TestClient) -> None:
        # Given an id that is not a UUID
        # When the model is read
        response = client.get(f"{MODELS}/not-a-uuid")
        # Then it is a 422 naming the path parameter
        assert_problem(response, 422, "path.model_id")

    def test_deploy_errors(self, client: TestClient) -> None:
        # Given an untrained model and a model with one trained version
        untrained = create_model(client)
        trained = trained_model(client)
        # When the untrained one is deployed, and version 5 of the trained one is deployed
        no_version = client.post(f"{MODELS}/{untrained}/deploy", json={"environment": "prod"})
        never_trained = client.post(
            f"{MODELS}/{trained}/deploy", json={"environment": "prod", "model_version": 5}
        )
        # Then the first is a conflict and the second names model_version
        assert_problem(no_version, 409)
        assert_problem(never_trained, 422, field_prefix="model_version")

    def test_if_match_errors(self, client: TestClient) -> None:
        # Given a model at version 1
        model_id = create_model(client)
        url = f"{MODELS}/{model_id}"
        # When it is updated with a malformed and then with a stale If-Match
        malformed = client.patch(url, json={"description": "x"}, headers={"If-Match": "v1"})
        stale = client.patch(url, json={"description": "x"}, headers={"If-Match": '"7"'})
        # Then the first is a 400 naming If-Match, the second a 412, and nothing changed
        assert_problem(malformed, 400, "If-Match")
        assert_problem(stale, 412)
        assert model_version(client, model_id) == 1

    def test_idempotency_key_errors(self, client: TestClient) -> None:
        # Given a model created with an Idempotency-Key
        headers = {"Idempotency-Key": "create-once"}
        first = client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "a"}, headers=headers)
        assert first.status_code == 201, first.text
        # When the key is reused with a different body, and a malformed key is sent
        reused = client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "b"}, headers=headers)
        malformed = client.post(
            MODELS, json={**VALID_BODIES[CREATE], "name": "c"}, headers={"Idempotency-Key": "a b"}
        )
        # Then the first is a 422 and the second a 400, both naming the header
        assert_problem(reused, 422, "Idempotency-Key")
        assert_problem(malformed, 400, "Idempotency-Key")

    def test_control_characters_and_surrogates_are_named(self, client: TestClient) -> None:
        # Given create bodies with a NUL in the name and a lone surrogate in the configuration
        nul_name = {**VALID_BODIES[CREATE], "name": "bad\x00name"}
        surrogate = '{"name": "s", "task": "t", "framework": "f", "configuration": {"\\ud800": 1}}'
        # When they are sent
        # Then each is a 422 naming the field, never a 500 from the store
        assert_problem(client.post(MODELS, json=nul_name), 422, "body.name")
        assert_problem(
            raw_json(client, "POST", MODELS, surrogate), 422, field_prefix="body.configuration"
        )

    def test_an_unknown_field_is_named(self, client: TestClient) -> None:
        # Given a create body with a field the API does not know
        body = {**VALID_BODIES[CREATE], "colour": "blue"}
        # When it is sent
        # Then the field is named
        assert_problem(client.post(MODELS, json=body), 422, "body.colour")
