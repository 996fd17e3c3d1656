"""Bodies that are not JSON objects, bad metrics and free-form JSON, oversized bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.problems import (
    BODY_ENDPOINTS,
    COMPLETE,
    CREATE,
    DEPLOY,
    FAIL,
    JSON_HEADERS,
    MODELS,
    PATCH,
    PUT,
    TRAIN,
    UNDEPLOY,
    VALID_BODIES,
    Subject,
    assert_problem,
    create_model,
    endpoint_id,
    raw_json,
    unique_name,
)
from tests.support.reads import model_now

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


NOT_JSON = [
    "text/plain",
    "application/x-www-form-urlencoded",  # what curl -d sends without -H
    "multipart/form-data; boundary=x",
    "application/problem",
    "application/jsonx",
    None,
]


def test_a_json_body_not_sent_as_json_is_a_415(memory_client: TestClient) -> None:
    # Given a well-formed create body
    body = json.dumps({**VALID_BODIES[CREATE], "name": "sent-as-text"}).encode()
    for content_type in NOT_JSON:
        headers = {"content-type": content_type} if content_type else {}
        # When it is sent with another Content-Type than JSON's, or none
        response = memory_client.post(MODELS, content=body, headers=headers)
        # Then it is a 415 naming the Content-Type
        assert_problem(response, 415, "Content-Type")
    # and nothing was recorded
    assert memory_client.get(MODELS, params={"q": "sent"}).json()["items"] == []


def test_every_command_with_a_body_refuses_text_with_415(
    memory_client: TestClient, subject: Subject
) -> None:
    for endpoint in BODY_ENDPOINTS:
        # Given a well-formed body for each command
        method, template = endpoint
        body = json.dumps(VALID_BODIES[endpoint]).encode()
        # When it is sent as text
        headers = {"content-type": "text/plain"}
        response = memory_client.request(
            method, subject.path(template), content=body, headers=headers
        )
        # Then it is a 415, and nothing was recorded
        assert_problem(response, 415, "Content-Type")
    assert model_now(memory_client, subject.model_id).json()["version"] == 2


def test_a_streamed_body_not_sent_as_json_is_a_415(memory_client: TestClient) -> None:
    # Given a create body streamed in chunks (no Content-Length), as text
    def chunks() -> Iterator[bytes]:
        yield json.dumps(VALID_BODIES[CREATE]).encode()

    response = memory_client.post(MODELS, content=chunks(), headers={"content-type": "text/plain"})
    # Then it is a 415 as well
    assert "content-length" not in response.request.headers
    assert_problem(response, 415, "Content-Type")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
        "application/vnd.modelledger+json; charset=UTF-8",
    ],
)
def test_json_and_json_suffixed_media_types_are_accepted(
    memory_client: TestClient, content_type: str
) -> None:
    # When a body is sent as application/json or as application/*+json
    body = json.dumps({**VALID_BODIES[CREATE], "name": unique_name()}).encode()
    response = memory_client.post(MODELS, content=body, headers={"content-type": content_type})
    # Then it is accepted
    assert response.status_code == 201, response.text


def test_a_command_without_a_body_needs_no_content_type(memory_client: TestClient) -> None:
    # Given a model
    model_id = create_model(memory_client)
    # When it is archived with no body and no Content-Type (as curl -X DELETE sends it)
    response = memory_client.delete(f"{MODELS}/{model_id}")
    # Then that is fine
    assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text


def test_a_read_sent_a_body_that_is_not_json_gets_the_415_its_operation_documents(
    memory_client: TestClient,
) -> None:
    # When a read is sent a text body
    response = memory_client.request(
        "GET", MODELS, content=b"hello", headers={"Content-Type": "text/plain"}
    )
    # Then it is a 415, as the document says any operation may answer
    assert response.status_code == 415, response.text
    documented = memory_client.get("/openapi.json").json()["paths"][MODELS]["get"]["responses"]
    assert {"400", "413", "415", "431"} <= set(documented)


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
    model = model_now(memory_client, subject.model_id).json()
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
    assert model_now(memory_client, subject.model_id).status_code == 200


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
