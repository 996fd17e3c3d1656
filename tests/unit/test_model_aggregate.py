"""The AIModel and ApiKey aggregates alone: given these events, when a method, then these
events (or this refusal, and nothing recorded). No store, no application, no handlers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.utils import get_topic

from write_model.access import Role
from write_model.api_key import ApiKey
from write_model.audit import acting
from write_model.errors import (
    DeploymentPending,
    KeyRevoked,
    ManagedDeployment,
    ManagedRun,
    ModelArchived,
    ModelStillDeployed,
    NothingToRollBack,
    NoTrainedVersion,
    TrainingRunFinished,
    UnknownModelVersion,
)
from write_model.model import AIModel
from write_model.training import RunState
from write_model.values import EventMetadata, ModelStatus

META = EventMetadata("ada", "c-1", "cmd-1")
WHO = {"actor": "ada", "correlation_id": "c-1", "causation_id": "cmd-1"}
MODEL_ID = AIModel.create_id("vision", "resnet")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOT_DATA = {"originator_id", "originator_version", "timestamp", "originator_topic"}

Event = tuple[type[AIModel.Event], dict[str, Any]]


# -- the story's words --------------------------------------------------------------------


def history(*events: Event) -> list[AIModel.Event]:
    """These events, as stored earlier (by someone else, a minute apart)."""
    return [
        cls(
            originator_id=MODEL_ID,
            originator_version=n,
            timestamp=T0 + timedelta(minutes=n),
            **({"originator_topic": get_topic(AIModel)} if n == 1 else {}),
            **{**WHO, "actor": "someone"},
            **fields,
        )
        for n, (cls, fields) in enumerate(events, start=1)
    ]


def given(*events: Event) -> AIModel:
    """The model these events fold to."""
    model = project_aggregate(None, history(*events))
    assert isinstance(model, AIModel)
    return model


def then(model: AIModel | ApiKey) -> list[tuple[str, dict[str, Any]]]:
    """What the method recorded: each event's name and data (all say who: see below)."""
    return [
        (type(e).__name__, {k: v for k, v in vars(e).items() if k not in NOT_DATA | WHO.keys()})
        for e in model.collect_events()
    ]


def created(**fields: Any) -> Event:
    data: dict[str, Any] = {"name": "resnet", "project": "vision", "description": ""}
    data |= {"task": "classification", "framework": "pytorch", "tags": [], "configuration": {}}
    data |= {"owner": "grace"}
    return AIModel.ModelCreated, data | fields


def started(run_id: str, backend: str = "external") -> Event:
    data = {"run_id": run_id, "dataset": "d", "hyperparameters": {}, "backend": backend}
    return AIModel.TrainingStarted, data | {"base_model": None}


def trained(run_id: str, version: int) -> Event:
    data = {"run_id": run_id, "model_version": version, "metrics": {"accuracy": 0.9}}
    unset = {"artifact_uri": None, "output_model": None, "source_version": None}
    return AIModel.ModelTrained, data | unset


def deployed(env: str, version: int, url: str | None = None, **fields: Any) -> Event:
    data = {"environment": env, "model_version": version, "previous_version": None}
    data |= {"endpoint_url": url, "target": "external", "endpoint_name": None}
    return AIModel.ModelDeployed, data | fields


def two_versions() -> list[Event]:
    return [created(), started("r1"), trained("r1", 1), started("r2"), trained("r2", 2)]


# -- creating and changing ------------------------------------------------------------------


def test_registering_records_who_owns_the_model_by_default() -> None:
    model = AIModel.register(name="resnet", project="vision", task="t", framework="f", meta=META)
    assert model.id == MODEL_ID  # one id per project and name: a duplicate conflicts
    ((name, data),) = then(model)
    assert (name, data["owner"], data["tags"]) == ("ModelCreated", "ada", [])
    assert (model.status, model.created_by) == (ModelStatus.CREATED, "ada")


def test_an_update_records_only_what_changed_and_a_no_op_nothing() -> None:
    model = given(created(description="old"))
    model.update({"description": "new", "owner": "grace", "name": "renamed"}, META)
    model.update({"description": "new"}, META)
    assert then(model) == [("ModelUpdated", {"changes": {"description": "new"}})]


# -- training -------------------------------------------------------------------------------


def test_a_completed_run_creates_the_next_version() -> None:
    model = given(created(), started("r1"), trained("r1", 1), started("r2"))
    assert model.complete_training(run_id="r2", metrics={"f1": 1}, artifact_uri=None, meta=META)
    assert then(model) == [
        ("ModelTrained", {"run_id": "r2", "model_version": 2, "metrics": {"f1": 1.0},
                          "artifact_uri": None, "output_model": None, "source_version": None}),
    ]  # fmt: skip
    assert (model.status, model.training_runs["r2"].state) == ("trained", RunState.COMPLETED)


def test_a_run_completes_or_fails_once() -> None:
    model = given(
        created(), started("r1"), (AIModel.TrainingFailed, {"run_id": "r1", "reason": "x"})
    )
    assert model.status is ModelStatus.FAILED
    with pytest.raises(TrainingRunFinished, match="already failed"):
        model.complete_training(run_id="r1", metrics={}, artifact_uri=None, meta=META)
    assert then(model) == []


def test_a_providers_run_is_completed_by_the_provider_only() -> None:
    model = given(created(), started("r1", backend="openai"))
    with pytest.raises(ManagedRun):
        model.complete_training(run_id="r1", metrics={}, artifact_uri=None, meta=META)
    model.record_training_job(run_id="r1", job_id="ftjob-1", meta=META)
    model.record_training_job(run_id="r1", job_id="ftjob-1", meta=META)  # known: no event
    model.complete_training(run_id="r1", metrics={}, artifact_uri=None, meta=META, by_backend=True)
    assert [name for name, _ in then(model)] == ["TrainingJobSubmitted", "ModelTrained"]


def test_an_import_starts_and_completes_its_run_at_once() -> None:
    model = given(created())
    version = model.import_version(
        run_id="i1", source="huggingface", dataset="hub", metrics={"wer": 0.1},
        output_model="acme/m", artifact_uri=None, meta=META,
    )  # fmt: skip
    assert version == 1
    assert [name for name, _ in then(model)] == ["TrainingStarted", "ModelTrained"]
    assert model.training_runs["i1"].backend == "huggingface"


# -- deployments and the rollback stack -----------------------------------------------------


def test_only_a_trained_version_deploys() -> None:
    with pytest.raises(NoTrainedVersion):
        given(created()).deploy(
            environment="prod", model_version=None, endpoint_url=None, meta=META
        )
    with pytest.raises(UnknownModelVersion, match="latest is 2"):
        given(*two_versions()).deploy(
            environment="prod", model_version=3, endpoint_url=None, meta=META
        )


def test_a_deploy_over_a_version_keeps_it_to_roll_back_to() -> None:
    model = given(*two_versions(), deployed("prod", 1, "https://one"))
    model.deploy(environment="prod", model_version=2, endpoint_url="https://two", meta=META)
    model.roll_back(environment="prod", meta=META)
    assert then(model) == [
        ("ModelDeployed", {"environment": "prod", "model_version": 2, "previous_version": 1,
                           "endpoint_url": "https://two", "target": "external",
                           "endpoint_name": None}),
        ("ModelRolledBack", {"environment": "prod", "model_version": 1, "from_version": 2,
                             "endpoint_url": "https://one"}),
    ]  # fmt: skip
    served = model.deployments["prod"]
    assert (served.model_version, served.endpoint_url, served.previous_versions) == (
        1,
        "https://one",
        [],
    )
    with pytest.raises(NothingToRollBack):
        model.roll_back(environment="prod", meta=META)


def test_a_new_endpoint_for_the_same_version_is_nothing_to_roll_back_to() -> None:
    model = given(*two_versions(), deployed("prod", 2, "https://a"))
    model.deploy(environment="prod", model_version=2, endpoint_url=None, meta=META)  # as it is
    model.deploy(environment="prod", model_version=2, endpoint_url="https://b", meta=META)
    assert [name for name, _ in then(model)] == ["ModelDeployed"]
    assert model.deployments["prod"].rollback_target is None


def test_a_provider_serves_after_it_says_so_and_one_request_at_a_time() -> None:
    model = given(*two_versions())
    model.request_deployment(
        request_id="q1", environment="prod", model_version=None, target="openai", meta=META
    )
    with pytest.raises(DeploymentPending):
        model.deploy(environment="prod", model_version=1, endpoint_url=None, meta=META)
    model.complete_deployment(request_id="q1", endpoint_url=None, endpoint_name="ep", meta=META)
    with pytest.raises(ManagedDeployment, match="its provider must take it down"):
        model.undeploy(environment="prod", meta=META)
    model.request_undeployment(request_id="q2", environment="prod", meta=META)
    model.complete_deployment(request_id="q2", endpoint_url=None, endpoint_name="ep", meta=META)
    assert then(model) == [
        ("DeploymentRequested", {"request_id": "q1", "action": "deploy", "environment": "prod",
                                 "model_version": 2, "target": "openai"}),
        ("ModelDeployed", {"environment": "prod", "model_version": 2, "previous_version": None,
                           "endpoint_url": None, "target": "openai", "endpoint_name": "ep"}),
        ("DeploymentRequested", {"request_id": "q2", "action": "undeploy", "environment": "prod",
                                 "model_version": None, "target": "openai"}),
        ("ModelUndeployed", {"environment": "prod", "model_version": 2}),
    ]  # fmt: skip
    assert (model.deployments, model.pending_deployments, model.status) == ({}, {}, "trained")


def test_a_failed_request_leaves_what_served() -> None:
    model = given(*two_versions(), deployed("prod", 1))
    model.undeploy(environment="prod", meta=META)
    model.deploy(environment="prod", model_version=1, endpoint_url=None, meta=META)
    model.request_deployment(
        request_id="q1", environment="staging", model_version=2, target="openai", meta=META
    )
    model.fail_deployment(request_id="q1", reason="quota", meta=META)
    assert then(model)[-1] == (
        "DeploymentFailed",
        {"request_id": "q1", "action": "deploy", "environment": "staging", "reason": "quota"},
    )
    assert (list(model.deployments), model.pending_deployments) == (["prod"], {})


# -- archiving ------------------------------------------------------------------------------


def test_archiving_ends_the_runs_still_going_and_then_refuses_change() -> None:
    model = given(*two_versions(), deployed("prod", 1))
    with pytest.raises(ModelStillDeployed, match="prod"):
        model.archive(reason="old", meta=META)
    model.undeploy(environment="prod", meta=META)
    model.start_training(
        run_id="r3", dataset="d", hyperparameters={}, backend="external", meta=META
    )
    model.archive(reason="old", meta=META)
    assert then(model)[-2:] == [
        ("TrainingFailed", {"run_id": "r3", "reason": "model archived: old"}),
        ("ModelArchived", {"reason": "old"}),
    ]
    with pytest.raises(ModelArchived):
        model.start_training(run_id="r4", dataset="d", hyperparameters={}, backend="x", meta=META)
    assert model.status is ModelStatus.ARCHIVED


# -- who and why, and replay ---------------------------------------------------------------


def test_every_event_says_who_caused_it_and_why() -> None:
    model = AIModel.register(name="resnet", project="vision", task="t", framework="f", meta=META)
    model.start_training(
        run_id="r1", dataset="d", hyperparameters={}, backend="external", meta=META
    )
    model.fail_training(run_id="r1", reason="stop", meta=EventMetadata("bob", "c-2", "cmd-2"))
    events = [cast(AIModel.Event, e) for e in model.collect_events()]
    assert [(e.actor, e.correlation_id, e.causation_id) for e in events] == [
        ("ada", "c-1", "cmd-1"), ("ada", "c-1", "cmd-1"), ("bob", "c-2", "cmd-2"),
    ]  # fmt: skip


def test_nothing_is_recorded_without_someone_acting() -> None:
    model = given(created())
    with pytest.raises(RuntimeError, match="who caused it"):
        model._updated({"description": "by nobody"})
    with acting(META):
        model._updated({"description": "by ada"})
    assert then(model) == [("ModelUpdated", {"changes": {"description": "by ada"}})]


def test_replaying_what_was_recorded_gives_the_same_model() -> None:
    before = history(*two_versions(), deployed("prod", 1, "https://one"))
    model = project_aggregate(None, before)
    assert isinstance(model, AIModel)
    model.deploy(environment="prod", model_version=2, endpoint_url="https://two", meta=META)
    model.roll_back(environment="prod", meta=META)
    model.undeploy(environment="prod", meta=META)
    model.archive(reason="done", meta=META)
    assert project_aggregate(None, [*before, *model.collect_events()]) == model


# -- API keys ---------------------------------------------------------------------------------


def test_a_key_is_issued_for_sorted_projects_and_revoked_once() -> None:
    key = ApiKey.issue(
        key_id=MODEL_ID, name="ci", role=Role.EDITOR, projects=["b", "a", "a"],
        secret_sha256="0" * 64, meta=META,
    )  # fmt: skip
    key.revoke(META)
    assert then(key) == [
        ("KeyIssued", {"name": "ci", "role": "editor", "projects": ["a", "b"],
                       "secret_sha256": "0" * 64}),
        ("KeyRevoked", {}),
    ]  # fmt: skip
    with pytest.raises(KeyRevoked):
        key.revoke(META)
    assert (key.revoked, key.issued_by, key.principal.projects) == (True, "ada", frozenset("ab"))
