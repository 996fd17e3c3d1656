"""Missing, ill-typed, unknown and over-limit fields: 4xx problem+json naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from commands.messages import MAX_TAGS
from tests.e2e.problems import (
    BODY_ENDPOINTS,
    COMPLETE,
    CREATE,
    DEPLOY,
    FAIL,
    MODELS,
    PATCH,
    PUT,
    ROLLBACK,
    TRAIN,
    UNDEPLOY,
    VALID_BODIES,
    Subject,
    assert_problem,
    endpoint_id,
    error_fields,
    model_version,
    unique_name,
)
from tests.support.reads import model_now

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


def test_archiving_with_control_characters_in_the_reason_is_refused_by_name(
    memory_client: TestClient, subject: Subject
) -> None:
    # Given a model
    for reason in ["line\nbreak", "nul\x00", "escape\x1b[31m", "tab\there", "\x7f", "\u2028"]:
        # When it is archived with a reason holding control characters (as body text may not)
        response = memory_client.delete(f"{MODELS}/{subject.model_id}", params={"reason": reason})
        # Then the reason is refused by name
        assert_problem(response, 422, "query.reason")
    # and the model is not archived
    assert model_now(memory_client, subject.model_id).json()["status"] != "archived"


def test_archiving_with_a_plain_reason_keeps_it(
    memory_client: TestClient, subject: Subject
) -> None:
    reason = "superseded by v2 — see ticket #42"
    response = memory_client.delete(f"{MODELS}/{subject.model_id}", params={"reason": reason})
    assert response.status_code == 200, response.text
    history = memory_client.get(f"{MODELS}/{subject.model_id}/history").json()["items"]
    assert history[-1]["data"]["reason"] == reason


def test_a_search_for_no_word_is_refused_by_name(memory_client: TestClient) -> None:
    # Given a model in the catalogue
    body = {"name": unique_name(), "task": "t", "framework": "f", "description": "fraud detector"}
    position = memory_client.post(MODELS, json=body).json()["position"]
    for q in ["", " ", "\t", " \t  ", "-", '"', "  ?!  "]:
        # When the catalogue is searched for nothing but spaces, tabs or punctuation
        response = memory_client.get(MODELS, params={"q": q})
        # Then it is a 422 naming q, not every model
        assert_problem(response, 422, "query.q")
    # while a word with spaces around it finds the model
    asked = {"q": "  fraud\t", "min_position": position}
    found = memory_client.get(MODELS, params=asked).json()["items"]
    assert len(found) == 1


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
