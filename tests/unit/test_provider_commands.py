"""Stories of runs and deployments that providers carry out, told at the command
layer (in-memory store): what is recorded when, and what is refused meanwhile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from commands.messages import (
    ArchiveModel,
    CompleteDeployment,
    CompleteTraining,
    DeployModel,
    FailDeployment,
    FailTraining,
    ImportVersion,
    RecordTrainingJob,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
)
from modelledger.bootstrap import Ledger
from tests.support.ledgers import make_ledger
from tests.support.story import Story
from write_model.errors import (
    DeploymentPending,
    DeploymentRequestNotFound,
    ManagedDeployment,
    ManagedRun,
    ModelStillDeployed,
    TrainingRunFinished,
)


@pytest.fixture
def story() -> Iterator[Story]:
    ledger: Ledger = make_ledger("memory://")
    yield Story(ledger.registry)
    ledger.close()


def test_a_provider_run_records_its_base_model_and_then_its_job(story: Story) -> None:
    story.a_model()
    started = story.when(
        TrainModel(model_id=story.id, dataset="chat.jsonl", backend="openai", base_model="gpt-x")
    )
    run_id = started.details["run_id"]
    [(kind, data)] = story.then_events()
    assert (kind, data["backend"], data["base_model"]) == ("TrainingStarted", "openai", "gpt-x")
    story.when(RecordTrainingJob(model_id=story.id, run_id=run_id, job_id="ftjob-1"))
    assert story.then_events() == [
        ("TrainingJobSubmitted", {"run_id": run_id, "job_id": "ftjob-1"})
    ]
    # The same job again (a worker resumed) records nothing.
    story.when(RecordTrainingJob(model_id=story.id, run_id=run_id, job_id="ftjob-1"))
    assert story.then_events() == []


def test_a_provider_backend_needs_a_base_model() -> None:
    with pytest.raises(ValidationError) as raised:
        TrainModel(model_id="00000000-0000-0000-0000-000000000001", dataset="d", backend="openai")
    assert raised.value.errors()[0]["loc"] == ("base_model",)


def test_a_job_for_a_finished_run_is_refused(story: Story) -> None:
    story.a_model().a_trained_version()
    story.then_rejected(
        RecordTrainingJob(model_id=story.id, run_id=story.run, job_id="late"), TrainingRunFinished
    )


def test_an_imported_version_is_a_run_that_starts_and_completes_at_once(story: Story) -> None:
    story.a_model()
    story.when(
        ImportVersion(
            model_id=story.id,
            source="huggingface",
            dataset="imdb",
            metrics={"accuracy": 0.93},
            output_model="org/model",
            artifact_uri="https://hub.example/org/model/tree/abc",
        )
    )
    [(started, start), (trained, done)] = story.then_events()
    assert (started, start["backend"], start["dataset"]) == (
        "TrainingStarted",
        "huggingface",
        "imdb",
    )
    assert (trained, done["model_version"], done["metrics"]) == (
        "ModelTrained",
        1,
        {"accuracy": 0.93},
    )
    assert done["output_model"] == "org/model" and done["run_id"] == start["run_id"]


def a_pending_deployment(story: Story) -> str:
    story.a_model().a_trained_version()
    asked = story.when(DeployModel(model_id=story.id, environment="prod", target="huggingface"))
    assert asked.details["status"] == "pending"
    [(kind, data)] = story.then_events()
    assert kind == "DeploymentRequested"
    assert data == {
        "request_id": asked.details["request_id"],
        "action": "deploy",
        "environment": "prod",
        "model_version": 1,
        "target": "huggingface",
    }
    return str(asked.details["request_id"])


def test_a_provider_deployment_is_recorded_when_the_provider_has_carried_it_out(
    story: Story,
) -> None:
    request_id = a_pending_deployment(story)
    story.when(
        CompleteDeployment(
            model_id=story.id,
            request_id=request_id,
            endpoint_name="ml-abc-prod",
            endpoint_url="https://ep.example/prod",
        )
    )
    [(kind, data)] = story.then_events()
    assert kind == "ModelDeployed"
    assert data["target"] == "huggingface" and data["endpoint_name"] == "ml-abc-prod"
    assert data["endpoint_url"] == "https://ep.example/prod"


def test_while_a_provider_works_the_environment_takes_no_other_change(story: Story) -> None:
    a_pending_deployment(story)
    story.then_rejected(DeployModel(model_id=story.id, environment="prod"), DeploymentPending)
    story.then_rejected(
        DeployModel(model_id=story.id, environment="prod", target="huggingface"),
        DeploymentPending,
    )
    story.then_rejected(ArchiveModel(model_id=story.id), ModelStillDeployed)


def test_a_failed_deployment_leaves_what_served_before(story: Story) -> None:
    request_id = a_pending_deployment(story)
    story.when(FailDeployment(model_id=story.id, request_id=request_id, reason="no capacity"))
    [(kind, data)] = story.then_events()
    assert (kind, data["reason"], data["action"]) == ("DeploymentFailed", "no capacity", "deploy")
    story.then_rejected(
        FailDeployment(model_id=story.id, request_id=request_id, reason="again"),
        DeploymentRequestNotFound,
    )
    # The environment takes requests again.
    story.when(DeployModel(model_id=story.id, environment="prod", endpoint_url="https://mine"))
    assert [kind for kind, _ in story.then_events()] == ["ModelDeployed"]


def test_undeploying_a_provider_endpoint_asks_the_provider_first(story: Story) -> None:
    request_id = a_pending_deployment(story)
    story.given(CompleteDeployment(model_id=story.id, request_id=request_id, endpoint_name="ep"))
    asked = story.when(UndeployModel(model_id=story.id, environment="prod"))
    [(kind, data)] = story.then_events()
    assert (kind, data["action"], data["target"]) == (
        "DeploymentRequested",
        "undeploy",
        "huggingface",
    )
    story.when(
        CompleteDeployment(
            model_id=story.id, request_id=asked.details["request_id"], endpoint_name="ep"
        )
    )
    assert story.then_events() == [("ModelUndeployed", {"environment": "prod", "model_version": 1})]


def test_a_provider_endpoint_is_not_changed_behind_its_providers_back(story: Story) -> None:
    request_id = a_pending_deployment(story)
    story.given(CompleteDeployment(model_id=story.id, request_id=request_id, endpoint_name="ep"))
    story.then_rejected(DeployModel(model_id=story.id, environment="prod"), ManagedDeployment)
    story.then_rejected(
        RollBackDeployment(model_id=story.id, environment="prod"), ManagedDeployment
    )


def test_a_provider_target_names_its_own_endpoint_url() -> None:
    with pytest.raises(ValidationError) as raised:
        DeployModel(
            model_id="00000000-0000-0000-0000-000000000001",
            environment="prod",
            target="huggingface",
            endpoint_url="https://mine",
        )
    assert raised.value.errors()[0]["loc"] == ("endpoint_url",)


def test_a_provider_run_is_completed_by_its_backend_not_by_hand(story: Story) -> None:
    story.a_model()
    started = story.when(
        TrainModel(model_id=story.id, dataset="d.jsonl", backend="openai", base_model="gpt-x")
    )
    run_id = started.details["run_id"]
    story.then_events()
    # By hand: refused, nothing recorded
    story.then_rejected(
        CompleteTraining(model_id=story.id, run_id=run_id, metrics={"accuracy": 1.0}), ManagedRun
    )
    # By its backend (the provider worker): recorded
    story.when(
        CompleteTraining(
            model_id=story.id, run_id=run_id, metrics={"train_loss": 0.1}, by_backend=True
        )
    )
    assert [kind for kind, _ in story.then_events()] == ["ModelTrained"]


def test_a_provider_run_may_be_failed_by_hand_to_stop_it(story: Story) -> None:
    story.a_model()
    started = story.when(
        TrainModel(model_id=story.id, dataset="d.jsonl", backend="openai", base_model="gpt-x")
    )
    story.then_events()
    story.when(FailTraining(model_id=story.id, run_id=started.details["run_id"], reason="stop"))
    assert [kind for kind, _ in story.then_events()] == ["TrainingFailed"]
