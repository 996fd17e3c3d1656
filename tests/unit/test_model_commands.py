"""Given events, when a command, then these events (or this refusal). In-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from commands.errors import IdempotencyKeyReused, VersionMismatch
from commands.messages import (
    ArchiveModel,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
    UpdateModel,
)
from commands.registry import CommandContext, IdempotencyRequest
from modelledger.bootstrap import Ledger
from queries.models import get_model, model_history
from tests.support.ledgers import make_ledger
from tests.support.story import Story
from write_model.errors import (
    DuplicateModelName,
    InvalidValue,
    ModelArchived,
    ModelNotFound,
    ModelStillDeployed,
    NotDeployed,
    NothingToRollBack,
    NoTrainedVersion,
    TrainingRunFinished,
    TrainingRunNotFound,
    UnknownModelVersion,
)
from write_model.values import ModelStatus, model_id_for


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    built = make_ledger("memory://")
    yield built
    built.close()


@pytest.fixture
def story(ledger: Ledger) -> Story:
    return Story(ledger.registry)


def status(story: Story) -> ModelStatus:
    return get_model(story.event_log, story.id)[0].status


def test_registering_a_model_records_model_created_with_its_metadata(story: Story) -> None:
    result = story.when(
        CreateModel(
            name="fraud",
            project="payments",
            task="Classification",
            framework="pytorch",
            tags=["a", "b", "a"],
            description="d",
        )
    )
    assert result.version == 1
    assert result.position == 1
    assert result.id == str(model_id_for("payments", "fraud"))
    [(kind, data)] = story.then_events()
    assert kind == "ModelCreated"
    assert data["task"] == "classification"  # case-insensitive identifiers
    assert data["tags"] == ["a", "b"]  # repeats dropped, order kept
    assert data["owner"] == "anonymous"
    assert status(story) is ModelStatus.CREATED


def test_a_second_model_with_the_same_name_in_the_project_is_refused(story: Story) -> None:
    story.a_model("fraud")
    story.then_rejected(
        CreateModel(name="fraud", task="classification", framework="pytorch"),
        DuplicateModelName,
    )


def test_the_same_name_in_another_project_is_another_model(story: Story) -> None:
    story.a_model("fraud")
    other = story.when(
        CreateModel(name="fraud", project="ads", task="classification", framework="pytorch")
    )
    assert UUID(other.id) != story.id


def test_updating_records_only_the_fields_that_change(story: Story) -> None:
    story.a_model(description="old")
    story.when(UpdateModel(model_id=story.id, description="new", task="classification"))
    assert story.then_events() == [("ModelUpdated", {"changes": {"description": "new"}})]


def test_an_update_that_changes_nothing_records_nothing(story: Story) -> None:
    story.a_model(description="same")
    result = story.when(UpdateModel(model_id=story.id, description="same"))
    assert story.then_events() == []
    assert result.version == 1
    assert result.position == 1


def test_starting_training_records_the_run_and_the_model_is_training(story: Story) -> None:
    story.a_model()
    result = story.when(
        TrainModel(model_id=story.id, dataset="s3://d", hyperparameters={"lr": 0.1})
    )
    [(kind, data)] = story.then_events()
    assert kind == "TrainingStarted"
    assert data == {
        "run_id": result.details["run_id"],
        "dataset": "s3://d",
        "hyperparameters": {"lr": 0.1},
        "backend": "external",
        "base_model": None,
    }
    assert status(story) is ModelStatus.TRAINING


def test_completing_a_run_makes_the_next_model_version_with_its_metrics(story: Story) -> None:
    story.a_model().a_trained_version(accuracy=0.8).a_training_run()
    result = story.when(
        CompleteTraining(
            model_id=story.id, run_id=story.run, metrics={"accuracy": 0.9}, artifact_uri="s3://m/2"
        )
    )
    assert result.details["model_version"] == 2
    [(kind, data)] = story.then_events()
    assert kind == "ModelTrained"
    assert data == {
        "run_id": story.run,
        "model_version": 2,
        "metrics": {"accuracy": 0.9},
        "artifact_uri": "s3://m/2",
        "output_model": None,
        "source_version": None,
    }
    assert status(story) is ModelStatus.TRAINED


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_metrics_must_be_finite(story: Story, bad: float) -> None:
    story.a_model().a_training_run()
    model, _ = get_model(story.event_log, story.id)
    with pytest.raises(InvalidValue) as raised:
        model.complete_training(
            run_id=story.run, metrics={"loss": bad}, artifact_uri=None, meta=CommandContext().meta
        )
    assert raised.value.field == "metrics.loss"


def test_a_run_completes_or_fails_once(story: Story) -> None:
    story.a_model().a_trained_version()
    story.then_rejected(
        CompleteTraining(model_id=story.id, run_id=story.run, metrics={"a": 1}),
        TrainingRunFinished,
    )
    story.then_rejected(
        FailTraining(model_id=story.id, run_id=story.run, reason="x"), TrainingRunFinished
    )


def test_an_unknown_run_cannot_be_completed(story: Story) -> None:
    story.a_model()
    story.then_rejected(
        CompleteTraining(model_id=story.id, run_id="nope", metrics={"a": 1}), TrainingRunNotFound
    )


def test_a_failed_run_is_recorded_with_its_reason_and_the_model_is_failed(story: Story) -> None:
    story.a_model().a_training_run()
    story.when(FailTraining(model_id=story.id, run_id=story.run, reason="OOM"))
    assert story.then_events() == [("TrainingFailed", {"run_id": story.run, "reason": "OOM"})]
    assert status(story) is ModelStatus.FAILED


def test_deploying_serves_the_latest_version_by_default(story: Story) -> None:
    story.a_model().a_trained_version().a_trained_version()
    result = story.when(DeployModel(model_id=story.id, environment="Production"))
    assert result.details == {"environment": "production", "model_version": 2}
    [(kind, data)] = story.then_events()
    assert (kind, data["model_version"], data["previous_version"]) == ("ModelDeployed", 2, None)
    assert status(story) is ModelStatus.DEPLOYED


def test_a_version_that_was_never_trained_cannot_be_deployed(story: Story) -> None:
    story.a_model()
    story.then_rejected(DeployModel(model_id=story.id, environment="prod"), NoTrainedVersion)
    story.a_trained_version()
    error = story.then_rejected(
        DeployModel(model_id=story.id, environment="prod", model_version=2), UnknownModelVersion
    )
    assert error.field == "model_version"


def test_rollback_returns_the_environment_to_the_version_and_endpoint_it_served_before(
    story: Story,
) -> None:
    story.a_model().a_trained_version().a_trained_version()
    story.given(
        DeployModel(
            model_id=story.id, environment="prod", model_version=1, endpoint_url="https://v1"
        ),
        DeployModel(
            model_id=story.id, environment="prod", model_version=2, endpoint_url="https://v2"
        ),
    )
    result = story.when(RollBackDeployment(model_id=story.id, environment="prod"))
    assert result.details["model_version"] == 1
    assert story.then_events() == [
        (
            "ModelRolledBack",
            {
                "environment": "prod",
                "model_version": 1,
                "from_version": 2,
                "endpoint_url": "https://v1",
            },
        )
    ]
    deployment = get_model(story.event_log, story.id)[0].deployments["prod"]
    assert (deployment.model_version, deployment.endpoint_url) == (1, "https://v1")
    assert deployment.previous_versions == []
    story.then_rejected(
        RollBackDeployment(model_id=story.id, environment="prod"), NothingToRollBack
    )


def test_deploying_what_is_already_served_records_nothing(story: Story) -> None:
    story.a_model().a_trained_version()
    story.given(DeployModel(model_id=story.id, environment="prod", endpoint_url="https://a"))
    story.when(DeployModel(model_id=story.id, environment="prod", model_version=1))
    story.when(DeployModel(model_id=story.id, environment="prod", endpoint_url="https://a"))
    assert story.then_events() == []
    story.when(DeployModel(model_id=story.id, environment="prod", endpoint_url="https://b"))
    [(kind, data)] = story.then_events()
    assert (kind, data["endpoint_url"], data["previous_version"]) == (
        "ModelDeployed",
        "https://b",
        1,
    )


def test_undeploying_removes_the_environment(story: Story) -> None:
    story.a_model().a_trained_version()
    story.given(DeployModel(model_id=story.id, environment="staging"))
    story.when(UndeployModel(model_id=story.id, environment="staging"))
    assert story.then_events() == [
        ("ModelUndeployed", {"environment": "staging", "model_version": 1})
    ]
    assert status(story) is ModelStatus.TRAINED
    story.then_rejected(UndeployModel(model_id=story.id, environment="staging"), NotDeployed)


def test_a_deployed_model_cannot_be_archived(story: Story) -> None:
    story.a_model().a_trained_version()
    story.given(DeployModel(model_id=story.id, environment="prod"))
    story.then_rejected(ArchiveModel(model_id=story.id), ModelStillDeployed)


def test_an_archived_model_refuses_training_deploys_and_updates(story: Story) -> None:
    story.a_model().a_trained_version()
    story.when(ArchiveModel(model_id=story.id, reason="superseded"))
    assert story.then_events() == [("ModelArchived", {"reason": "superseded"})]
    assert status(story) is ModelStatus.ARCHIVED
    for command in (
        TrainModel(model_id=story.id, dataset="d"),
        DeployModel(model_id=story.id, environment="prod"),
        UpdateModel(model_id=story.id, description="x"),
        ArchiveModel(model_id=story.id),
    ):
        story.then_rejected(command, ModelArchived)


def test_archiving_ends_the_runs_still_running_as_failed(story: Story) -> None:
    story.a_model().a_training_run()
    story.when(ArchiveModel(model_id=story.id, reason="superseded"))
    assert story.then_events() == [
        ("TrainingFailed", {"run_id": story.run, "reason": "model archived: superseded"}),
        ("ModelArchived", {"reason": "superseded"}),
    ]
    assert status(story) is ModelStatus.ARCHIVED


def test_commands_on_an_unknown_model_are_not_found(story: Story) -> None:
    story.model_id = model_id_for("nowhere", "nothing")
    with pytest.raises(ModelNotFound):
        story.when(TrainModel(model_id=story.id, dataset="d"))


def test_if_match_with_a_stale_version_is_refused(story: Story) -> None:
    story.a_model()
    with pytest.raises(VersionMismatch):
        story.when(
            UpdateModel(model_id=story.id, description="x"), CommandContext(expected_version=2)
        )
    story.when(UpdateModel(model_id=story.id, description="x"), CommandContext(expected_version=1))
    assert [kind for kind, _ in story.then_events()] == ["ModelUpdated"]


def test_a_retry_with_the_same_idempotency_key_replays_and_appends_nothing(story: Story) -> None:
    story.a_model()
    ctx = CommandContext(idempotency=IdempotencyRequest("key-1", "fingerprint-a"))
    first = story.when(TrainModel(model_id=story.id, dataset="d"), ctx)
    retry = story.when(TrainModel(model_id=story.id, dataset="d"), ctx)
    assert (retry.id, retry.version, retry.position, retry.details) == (
        first.id,
        first.version,
        first.position,
        first.details,
    )
    assert retry.replayed
    assert len(story.then_events()) == 1


def test_reusing_an_idempotency_key_for_another_request_is_refused(story: Story) -> None:
    story.a_model()
    story.when(
        TrainModel(model_id=story.id, dataset="d"),
        CommandContext(idempotency=IdempotencyRequest("key-2", "fingerprint-a")),
    )
    with pytest.raises(IdempotencyKeyReused):
        story.when(
            TrainModel(model_id=story.id, dataset="other"),
            CommandContext(idempotency=IdempotencyRequest("key-2", "fingerprint-b")),
        )


def test_every_event_carries_actor_correlation_and_causation(story: Story) -> None:
    ctx = CommandContext(actor="alice", correlation_id="corr-1")
    story.when(CreateModel(name="m", task="t", framework="f"), ctx)
    [event] = model_history(story.event_log, story.id)
    assert (event["actor"], event["correlation_id"], event["causation_id"]) == (
        "alice",
        "corr-1",
        ctx.command_id,
    )
