"""The AIModel's events: what each records (its fields are the stored JSON) and what
it changes in the model (its ``@event`` function, run when it is recorded and on every
replay, so it only changes state: the rules were checked before it was recorded).

``AIModel`` names each event and function in its class body: the library redefines
the event there as ``AIModel.<Name>``, the class stored events decode to, whose topic
``write_model.model:AIModel.<Name>`` is what the store has always held; and calling
the function as a method records its event. The library fills an event function's
parameters from the event by name, and passes the model as ``self`` (hence the name),
``timestamp`` the event's own. Every event also carries ``Audited.Event``'s actor,
correlation and causation. Changing what an event records means a new
``class_version`` and an upcaster.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate, event

from write_model.audit import Audited, when
from write_model.deployments import DeploymentAction, DeploymentRequest, serving
from write_model.training import ModelVersion, RunState, TrainingRun
from write_model.values import EXTERNAL

if TYPE_CHECKING:
    from write_model.model import AIModel


# What ModelCreated changes: ``AIModel.__init__``.
class ModelCreated(Audited.Event, Aggregate.Created):
    """A model is registered. Its id is derived from ``project`` and ``name`` (a UUIDv5),
    so a name is unique within its project even under concurrent creates; ``owner``
    defaults to the actor."""

    name: str
    project: str
    description: str
    task: str
    framework: str
    tags: list[str]
    configuration: dict[str, Any]
    owner: str


class ModelUpdated(Audited.Event):
    """Metadata is updated: ``changes`` holds only the fields whose value changed, with
    their new values. An update that changes nothing records no event."""

    changes: dict[str, Any]


@event(ModelUpdated)
def updated(self: AIModel, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(self, key, value)


class TrainingStarted(Audited.Event):
    """A training run starts; several may run at once. ``backend`` is ``external`` (the
    client reports the outcome) or a provider that runs it (``openai``, or ``huggingface``
    for an import). v2 added ``base_model``: what a provider fine-tunes (v1 events have
    none)."""

    class_version = 2

    run_id: str
    dataset: str
    hyperparameters: dict[str, Any]
    backend: str
    base_model: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["base_model"] = None


@event(TrainingStarted)
def training_started(
    self: AIModel,
    run_id: str,
    dataset: str,
    hyperparameters: dict[str, Any],
    backend: str,
    base_model: str | None,
    timestamp: datetime | None = None,
) -> None:
    started_at = when(timestamp)
    hyperparameters = dict(hyperparameters)
    run = TrainingRun(run_id, dataset, hyperparameters, backend, started_at, base_model=base_model)
    self.training_runs[run_id] = run
    self.refresh_status()


class TrainingJobSubmitted(Audited.Event):
    """The run's backend accepted it as a job of its own (an OpenAI fine-tuning job): a
    restarted worker follows this job instead of starting another."""

    run_id: str
    job_id: str


@event(TrainingJobSubmitted)
def job_submitted(self: AIModel, run_id: str, job_id: str) -> None:
    self.training_runs[run_id].job_id = job_id


class ModelTrained(Audited.Event):
    """A running run completed, creating version ``model_version`` (N+1) with its
    ``metrics`` (finite numbers). v2 added ``output_model``: the trained model's name where
    its backend keeps it (an OpenAI fine-tuned model, a Hub repository); v1 events have
    none. v3 added ``source_version``: the version's number in the registry it was
    imported from (MLflow's numbers have gaps); earlier events have none."""

    class_version = 3

    run_id: str
    model_version: int
    metrics: dict[str, float]
    artifact_uri: str | None
    output_model: str | None
    source_version: int | None = None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["output_model"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["source_version"] = None


@event(ModelTrained)
def trained(
    self: AIModel,
    run_id: str,
    model_version: int,
    metrics: dict[str, float],
    artifact_uri: str | None,
    output_model: str | None,
    source_version: int | None,
    timestamp: datetime | None = None,
) -> None:
    run = self.training_runs[run_id]
    run.state, run.model_version = RunState.COMPLETED, model_version
    self.versions.append(
        ModelVersion(
            model_version,
            run_id,
            dict(metrics),
            artifact_uri,
            when(timestamp),
            output_model,
            source_version=source_version,
        )
    )
    self.last_finished_run = run_id
    self.refresh_status()


class VersionUpdated(Audited.Event):
    """What people say about a trained version changed: ``changes`` holds only its
    ``description`` and ``tags`` whose value changed. Its metrics never change."""

    model_version: int
    changes: dict[str, Any]


@event(VersionUpdated)
def version_updated(self: AIModel, model_version: int, changes: dict[str, Any]) -> None:
    index = model_version - 1
    self.versions[index] = replace(self.versions[index], **changes)


class TrainingFailed(Audited.Event):
    """A running run failed, with its ``reason``. Archiving a model first fails its runs
    still running ("model archived")."""

    run_id: str
    reason: str


@event(TrainingFailed)
def training_failed(self: AIModel, run_id: str, reason: str) -> None:
    run = self.training_runs[run_id]
    run.state, run.failure_reason = RunState.FAILED, reason
    self.last_finished_run = run_id
    self.refresh_status()


class DeploymentRequested(Audited.Event):
    """A provider target (``huggingface``) was asked to deploy (``action`` ``deploy``) or
    take down (``undeploy``) an environment's endpoint. The environment takes no other
    change until the outcome."""

    request_id: str
    action: str  # a DeploymentAction
    environment: str
    model_version: int | None  # deploy: the version to serve
    target: str


@event(DeploymentRequested)
def deployment_requested(
    self: AIModel,
    request_id: str,
    action: str,
    environment: str,
    model_version: int | None,
    target: str,
) -> None:
    request = DeploymentRequest(
        request_id, DeploymentAction(action), environment, target, model_version
    )
    self.pending_deployments[environment] = request


class DeploymentFailed(Audited.Event):
    """The provider could not carry out the request; what served before still does."""

    request_id: str
    action: str  # a DeploymentAction
    environment: str
    reason: str


@event(DeploymentFailed)
def deployment_failed(
    self: AIModel, request_id: str, action: str, environment: str, reason: str
) -> None:
    self.pending_deployments.pop(environment, None)


class ModelDeployed(Audited.Event):
    """A trained version serves an environment: at once for the ``external`` target, once
    the provider's endpoint runs for a provider target. Deploying the version an
    environment already serves, with no or the same ``endpoint_url``, records nothing.
    v2 added ``target`` (who runs the endpoint) and ``endpoint_name`` (its name there); v1
    events load as ``external``."""

    class_version = 2

    environment: str
    model_version: int
    previous_version: int | None
    endpoint_url: str | None
    target: str
    endpoint_name: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["target"] = EXTERNAL
        state["endpoint_name"] = None


@event(ModelDeployed)
def deployed(
    self: AIModel,
    environment: str,
    model_version: int,
    previous_version: int | None,
    endpoint_url: str | None,
    target: str,
    endpoint_name: str | None,
    timestamp: datetime | None = None,
) -> None:
    self.pending_deployments.pop(environment, None)
    self.deployments[environment] = serving(
        self.deployments.get(environment),
        environment=environment,
        model_version=model_version,
        endpoint_url=endpoint_url,
        target=target,
        endpoint_name=endpoint_name,
        at=when(timestamp),
    )
    self.refresh_status()


class ModelRolledBack(Audited.Event):
    """An environment goes back to the version (and endpoint) it served before: the top
    of its rollback stack, which every deploy of another version pushes onto. A rollback
    is its own fact in the audit trail, not a deploy."""

    environment: str
    model_version: int
    from_version: int
    endpoint_url: str | None


@event(ModelRolledBack)
def rolled_back(
    self: AIModel,
    environment: str,
    model_version: int,
    from_version: int,
    endpoint_url: str | None,
    timestamp: datetime | None = None,
) -> None:
    self.deployments[environment] = self.deployments[environment].rolled_back(
        model_version=model_version, endpoint_url=endpoint_url, at=when(timestamp)
    )


class ModelUndeployed(Audited.Event):
    """The model is removed from an environment; its rollback stack is cleared."""

    environment: str
    model_version: int


@event(ModelUndeployed)
def undeployed(self: AIModel, environment: str, model_version: int) -> None:
    del self.deployments[environment]
    self.pending_deployments.pop(environment, None)
    self.refresh_status()


class ModelArchived(Audited.Event):
    """The model is archived (``DELETE``): it takes no more commands, and its history
    stays readable."""

    reason: str


@event(ModelArchived)
def archived(self: AIModel, reason: str) -> None:
    self.archived = True
    self.refresh_status()
