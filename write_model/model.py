"""The AIModel aggregate: a registered model, its training runs, versions and deployments.

Public methods check invariants and raise domain errors before anything is
recorded; each event's ``apply`` only changes state, so replaying old events
never re-checks rules that may have changed since.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate

from write_model.errors import (
    ModelArchived,
    ModelStillDeployed,
    NotDeployed,
    NothingToRollBack,
    NoTrainedVersion,
    TrainingRunFinished,
    TrainingRunNotFound,
    UnknownModelVersion,
)
from write_model.values import (
    Deployment,
    EventMetadata,
    ModelStatus,
    ModelVersion,
    TrainingRun,
    instant,
    model_id_for,
    validate_metrics,
)

MUTABLE_FIELDS = ("description", "task", "framework", "tags", "configuration", "owner")


class AIModel(Aggregate):
    class Event(Aggregate.Event):
        actor: str
        correlation_id: str
        causation_id: str

        @property
        def when(self) -> str:
            return instant(self.timestamp)

    class ModelCreated(Event, Aggregate.Created):
        name: str
        project: str
        description: str
        task: str
        framework: str
        tags: list[str]
        configuration: dict[str, Any]
        owner: str

    @staticmethod
    def create_id(project: str, name: str) -> UUID:
        return model_id_for(project, name)

    def __init__(
        self,
        *,
        name: str,
        project: str,
        description: str,
        task: str,
        framework: str,
        tags: list[str],
        configuration: dict[str, Any],
        owner: str,
        actor: str,
        correlation_id: str,
        causation_id: str,
    ) -> None:
        self.name = name
        self.project = project
        self.description = description
        self.task = task
        self.framework = framework
        self.tags = list(tags)
        self.configuration = dict(configuration)
        self.owner = owner
        self.created_by = actor
        self.status = ModelStatus.CREATED
        self.archived = False
        self.training_runs: dict[str, TrainingRun] = {}
        self.last_finished_run: str | None = None
        self.versions: list[ModelVersion] = []
        self.deployments: dict[str, Deployment] = {}

    @classmethod
    def register(
        cls,
        *,
        name: str,
        project: str,
        task: str,
        framework: str,
        meta: EventMetadata,
        description: str = "",
        tags: list[str] | None = None,
        configuration: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> AIModel:
        return cls._create(
            cls.ModelCreated,
            id=cls.create_id(project, name),
            name=name,
            project=project,
            description=description,
            task=task,
            framework=framework,
            tags=list(tags or []),
            configuration=dict(configuration or {}),
            owner=owner or meta.actor,
            **meta.as_event_fields(),
        )

    # -- commands -----------------------------------------------------------

    def update(self, changes: dict[str, Any], meta: EventMetadata) -> None:
        self._require_active()
        effective = {
            key: value
            for key, value in changes.items()
            if key in MUTABLE_FIELDS and getattr(self, key) != value
        }
        if effective:  # a no-op update records nothing
            self.trigger_event(self.ModelUpdated, changes=effective, **meta.as_event_fields())

    def start_training(
        self,
        *,
        run_id: str,
        dataset: str,
        hyperparameters: dict[str, Any],
        backend: str,
        meta: EventMetadata,
    ) -> None:
        self._require_active()
        self.trigger_event(
            self.TrainingStarted,
            run_id=run_id,
            dataset=dataset,
            hyperparameters=dict(hyperparameters),
            backend=backend,
            **meta.as_event_fields(),
        )

    def complete_training(
        self,
        *,
        run_id: str,
        metrics: dict[str, Any],
        artifact_uri: str | None,
        meta: EventMetadata,
        output_model: str | None = None,
    ) -> int:
        self._require_active()
        self._require_running(run_id)
        valid = validate_metrics(metrics)
        version = len(self.versions) + 1
        self.trigger_event(
            self.ModelTrained,
            run_id=run_id,
            model_version=version,
            metrics=valid,
            artifact_uri=artifact_uri,
            output_model=output_model,
            **meta.as_event_fields(),
        )
        return version

    def fail_training(self, *, run_id: str, reason: str, meta: EventMetadata) -> None:
        self._require_active()
        self._require_running(run_id)
        self.trigger_event(
            self.TrainingFailed, run_id=run_id, reason=reason, **meta.as_event_fields()
        )

    def deploy(
        self,
        *,
        environment: str,
        model_version: int | None,
        endpoint_url: str | None,
        meta: EventMetadata,
    ) -> int:
        self._require_active()
        if not self.versions:
            raise NoTrainedVersion("the model has no trained version to deploy yet")
        version = model_version if model_version is not None else len(self.versions)
        if not 1 <= version <= len(self.versions):
            raise UnknownModelVersion(
                f"version {version} was never trained (latest is {len(self.versions)})",
                field="model_version",
            )
        current = self.deployments.get(environment)
        if (
            current
            and current.model_version == version
            and endpoint_url
            in (
                None,
                current.endpoint_url,
            )
        ):
            return version  # already serving exactly this: nothing to record
        self.trigger_event(
            self.ModelDeployed,
            environment=environment,
            model_version=version,
            previous_version=current.model_version if current else None,
            endpoint_url=endpoint_url,
            **meta.as_event_fields(),
        )
        return version

    def undeploy(self, *, environment: str, meta: EventMetadata) -> None:
        self._require_active()
        current = self._deployment_in(environment)
        self.trigger_event(
            self.ModelUndeployed,
            environment=environment,
            model_version=current.model_version,
            **meta.as_event_fields(),
        )

    def roll_back(self, *, environment: str, meta: EventMetadata) -> int:
        self._require_active()
        current = self._deployment_in(environment)
        if not current.previous_versions:
            raise NothingToRollBack(f"{environment!r} has no earlier version to roll back to")
        target = current.previous_versions[-1]
        self.trigger_event(
            self.ModelRolledBack,
            environment=environment,
            model_version=target,
            from_version=current.model_version,
            endpoint_url=current.previous_endpoint_urls[-1],
            **meta.as_event_fields(),
        )
        return target

    def archive(self, *, reason: str, meta: EventMetadata) -> None:
        self._require_active()
        if self.deployments:
            raise ModelStillDeployed(
                "undeploy the model from "
                + ", ".join(sorted(self.deployments))
                + " before archiving it"
            )
        # A run of an archived model could never finish: end it, with the reason.
        for run in list(self.training_runs.values()):
            if run.state == "running":
                self.trigger_event(
                    self.TrainingFailed,
                    run_id=run.run_id,
                    reason="model archived" + (f": {reason}" if reason else ""),
                    **meta.as_event_fields(),
                )
        self.trigger_event(self.ModelArchived, reason=reason, **meta.as_event_fields())

    # -- invariants ---------------------------------------------------------

    def _require_active(self) -> None:
        if self.archived:
            raise ModelArchived("the model is archived; its history stays readable")

    def _require_running(self, run_id: str) -> None:
        run = self.training_runs.get(run_id)
        if run is None:
            raise TrainingRunNotFound(f"training run {run_id!r} not found")
        if run.state != "running":
            raise TrainingRunFinished(f"training run {run_id!r} already {run.state}")

    def _deployment_in(self, environment: str) -> Deployment:
        deployment = self.deployments.get(environment)
        if deployment is None:
            raise NotDeployed(f"the model is not deployed in {environment!r}")
        return deployment

    def refresh_status(self) -> None:
        last = self.training_runs.get(self.last_finished_run or "")
        self.status = ModelStatus.derive(
            archived=self.archived,
            deployed=bool(self.deployments),
            training=any(run.state == "running" for run in self.training_runs.values()),
            last_run_failed=last is not None and last.state == "failed",
            trained=bool(self.versions),
        )

    # -- events -------------------------------------------------------------

    class ModelUpdated(Event):
        changes: dict[str, Any]

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            for key, value in self.changes.items():
                setattr(model, key, value)

    class TrainingStarted(Event):
        run_id: str
        dataset: str
        hyperparameters: dict[str, Any]
        backend: str

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            model.training_runs[self.run_id] = TrainingRun(
                run_id=self.run_id,
                dataset=self.dataset,
                hyperparameters=dict(self.hyperparameters),
                backend=self.backend,
                started_at=self.when,
            )
            model.refresh_status()

    class ModelTrained(Event):
        """v2 added ``output_model``: the trained model's name where its backend keeps
        it (an OpenAI fine-tuned model, a Hub repository). v1 events have none."""

        class_version = 2

        run_id: str
        model_version: int
        metrics: dict[str, float]
        artifact_uri: str | None
        output_model: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["output_model"] = None

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            run = model.training_runs[self.run_id]
            run.state = "completed"
            run.model_version = self.model_version
            model.versions.append(
                ModelVersion(
                    number=self.model_version,
                    run_id=self.run_id,
                    metrics=dict(self.metrics),
                    artifact_uri=self.artifact_uri,
                    created_at=self.when,
                    output_model=self.output_model,
                )
            )
            model.last_finished_run = self.run_id
            model.refresh_status()

    class TrainingFailed(Event):
        run_id: str
        reason: str

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            run = model.training_runs[self.run_id]
            run.state = "failed"
            run.failure_reason = self.reason
            model.last_finished_run = self.run_id
            model.refresh_status()

    class ModelDeployed(Event):
        environment: str
        model_version: int
        previous_version: int | None
        endpoint_url: str | None

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            current = model.deployments.get(self.environment)
            versions = list(current.previous_versions) if current else []
            endpoints = list(current.previous_endpoint_urls) if current else []
            if current and current.model_version != self.model_version:
                versions.append(current.model_version)
                endpoints.append(current.endpoint_url)
            model.deployments[self.environment] = Deployment(
                environment=self.environment,
                model_version=self.model_version,
                endpoint_url=self.endpoint_url,
                deployed_at=self.when,
                previous_versions=versions,
                previous_endpoint_urls=endpoints,
            )
            model.refresh_status()

    class ModelRolledBack(Event):
        environment: str
        model_version: int
        from_version: int
        endpoint_url: str | None

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            current = model.deployments[self.environment]
            current.previous_versions.pop()
            current.previous_endpoint_urls.pop()
            current.model_version = self.model_version
            current.endpoint_url = self.endpoint_url
            current.deployed_at = self.when

    class ModelUndeployed(Event):
        environment: str
        model_version: int

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            del model.deployments[self.environment]
            model.refresh_status()

    class ModelArchived(Event):
        reason: str

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            model.archived = True
            model.refresh_status()


EVENT_TYPES: tuple[type[AIModel.Event], ...] = (
    AIModel.ModelCreated,
    AIModel.ModelUpdated,
    AIModel.TrainingStarted,
    AIModel.ModelTrained,
    AIModel.TrainingFailed,
    AIModel.ModelDeployed,
    AIModel.ModelRolledBack,
    AIModel.ModelUndeployed,
    AIModel.ModelArchived,
)
