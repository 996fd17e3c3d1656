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
    DeploymentPending,
    DeploymentRequestNotFound,
    ManagedDeployment,
    ManagedRun,
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
    EXTERNAL,
    Deployment,
    DeploymentRequest,
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
        self.pending_deployments: dict[str, DeploymentRequest] = {}

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
        base_model: str | None = None,
    ) -> None:
        self._require_active()
        self.trigger_event(
            self.TrainingStarted,
            run_id=run_id,
            dataset=dataset,
            hyperparameters=dict(hyperparameters),
            backend=backend,
            base_model=base_model,
            **meta.as_event_fields(),
        )

    def record_training_job(self, *, run_id: str, job_id: str, meta: EventMetadata) -> None:
        """The provider accepted the run as ``job_id`` (a resumed worker finds it here)."""
        self._require_running(run_id)
        if self.training_runs[run_id].job_id != job_id:
            self.trigger_event(
                self.TrainingJobSubmitted, run_id=run_id, job_id=job_id, **meta.as_event_fields()
            )

    def import_version(
        self,
        *,
        run_id: str,
        source: str,
        dataset: str,
        metrics: dict[str, Any],
        output_model: str,
        artifact_uri: str | None,
        meta: EventMetadata,
    ) -> int:
        """A version trained elsewhere (a Hub model): its run starts and completes at once."""
        self._require_active()
        valid = validate_metrics(metrics)
        self.start_training(
            run_id=run_id, dataset=dataset, hyperparameters={}, backend=source, meta=meta
        )
        return self.complete_training(
            run_id=run_id,
            metrics=valid,
            artifact_uri=artifact_uri,
            output_model=output_model,
            meta=meta,
            by_backend=True,
        )

    def complete_training(
        self,
        *,
        run_id: str,
        metrics: dict[str, Any],
        artifact_uri: str | None,
        meta: EventMetadata,
        output_model: str | None = None,
        by_backend: bool = False,
    ) -> int:
        """``by_backend``: the run's own backend reports it (the provider worker, an import)."""
        self._require_active()
        self._require_running(run_id)
        backend = self.training_runs[run_id].backend
        if backend != EXTERNAL and not by_backend:
            raise ManagedRun(
                f"the {backend} backend records this run's outcome itself; fail the run to stop it",
                field="run_id",
            )
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
        version = self._deployable(environment, model_version)
        current = self.deployments.get(environment)
        if current is not None and current.target != EXTERNAL:
            raise ManagedDeployment(
                f"{environment!r} is served by a {current.target} endpoint: deploy with "
                f'"target": "{current.target}", or undeploy it first',
                field="environment",
            )
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
            target=EXTERNAL,
            endpoint_name=None,
            **meta.as_event_fields(),
        )
        return version

    def request_deployment(
        self,
        *,
        request_id: str,
        environment: str,
        model_version: int | None,
        target: str,
        meta: EventMetadata,
    ) -> int:
        """Ask a provider to serve a version; ModelDeployed follows when it does."""
        version = self._deployable(environment, model_version)
        self.trigger_event(
            self.DeploymentRequested,
            request_id=request_id,
            action="deploy",
            environment=environment,
            model_version=version,
            target=target,
            **meta.as_event_fields(),
        )
        return version

    def request_undeployment(
        self, *, request_id: str, environment: str, meta: EventMetadata
    ) -> None:
        """Ask the provider to take its endpoint down; ModelUndeployed follows when it has."""
        self._require_active()
        current = self._deployment_in(environment)
        self._require_no_pending(environment)
        self.trigger_event(
            self.DeploymentRequested,
            request_id=request_id,
            action="undeploy",
            environment=environment,
            model_version=None,
            target=current.target,
            **meta.as_event_fields(),
        )

    def complete_deployment(
        self, *, request_id: str, endpoint_url: str | None, endpoint_name: str, meta: EventMetadata
    ) -> int | None:
        """The provider carried out ``request_id``: record what now serves (or nothing)."""
        request = self._pending_request(request_id)
        if request.action == "undeploy":
            served = self.deployments[request.environment]
            self.trigger_event(
                self.ModelUndeployed,
                environment=request.environment,
                model_version=served.model_version,
                **meta.as_event_fields(),
            )
            return None
        assert request.model_version is not None
        current = self.deployments.get(request.environment)
        self.trigger_event(
            self.ModelDeployed,
            environment=request.environment,
            model_version=request.model_version,
            previous_version=current.model_version if current else None,
            endpoint_url=endpoint_url,
            target=request.target,
            endpoint_name=endpoint_name,
            **meta.as_event_fields(),
        )
        return request.model_version

    def fail_deployment(self, *, request_id: str, reason: str, meta: EventMetadata) -> None:
        request = self._pending_request(request_id)
        self.trigger_event(
            self.DeploymentFailed,
            request_id=request_id,
            action=request.action,
            environment=request.environment,
            reason=reason,
            **meta.as_event_fields(),
        )

    def undeploy(self, *, environment: str, meta: EventMetadata) -> None:
        self._require_active()
        current = self._deployment_in(environment)
        self._require_no_pending(environment)
        if current.target != EXTERNAL:
            raise ManagedDeployment(
                f"{environment!r} is served by a {current.target} endpoint: its provider "
                "must take it down",
                field="environment",
            )
        self.trigger_event(
            self.ModelUndeployed,
            environment=environment,
            model_version=current.model_version,
            **meta.as_event_fields(),
        )

    def roll_back(self, *, environment: str, meta: EventMetadata) -> int:
        self._require_active()
        current = self._deployment_in(environment)
        self._require_no_pending(environment)
        if current.target != EXTERNAL:
            raise ManagedDeployment(
                f"{environment!r} is served by a {current.target} endpoint: deploy the "
                f'version to go back to with "target": "{current.target}"',
                field="environment",
            )
        if not current.previous_versions:
            raise NothingToRollBack(
                f"{environment!r} has no earlier version to roll back to", field="environment"
            )
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
        if self.deployments or self.pending_deployments:
            raise ModelStillDeployed(
                "undeploy the model from "
                + ", ".join(sorted({*self.deployments, *self.pending_deployments}))
                + " before archiving it",
                field="model_id",
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
            raise ModelArchived(
                "the model is archived; its history stays readable", field="model_id"
            )

    def _require_running(self, run_id: str) -> None:
        run = self.training_runs.get(run_id)
        if run is None:
            raise TrainingRunNotFound(f"training run {run_id!r} not found", field="run_id")
        if run.state != "running":
            raise TrainingRunFinished(
                f"training run {run_id!r} already {run.state}", field="run_id"
            )

    def _deployable(self, environment: str, model_version: int | None) -> int:
        self._require_active()
        self._require_no_pending(environment)
        if not self.versions:
            raise NoTrainedVersion(
                "the model has no trained version to deploy yet", field="model_id"
            )
        version = model_version if model_version is not None else len(self.versions)
        if not 1 <= version <= len(self.versions):
            raise UnknownModelVersion(
                f"version {version} was never trained (latest is {len(self.versions)})",
                field="model_version",
            )
        return version

    def _require_no_pending(self, environment: str) -> None:
        pending = self.pending_deployments.get(environment)
        if pending is not None:
            raise DeploymentPending(
                f"{pending.target} is still carrying out request {pending.request_id} "
                f"({pending.action}) for {environment!r}",
                field="environment",
            )

    def _pending_request(self, request_id: str) -> DeploymentRequest:
        for request in self.pending_deployments.values():
            if request.request_id == request_id:
                return request
        raise DeploymentRequestNotFound(
            f"no deployment request {request_id!r} is pending", field="request_id"
        )

    def _deployment_in(self, environment: str) -> Deployment:
        deployment = self.deployments.get(environment)
        if deployment is None:
            raise NotDeployed(f"the model is not deployed in {environment!r}", field="environment")
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
        """v2 added ``base_model``: what a provider fine-tunes (v1 events have none)."""

        class_version = 2

        run_id: str
        dataset: str
        hyperparameters: dict[str, Any]
        backend: str
        base_model: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["base_model"] = None

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            model.training_runs[self.run_id] = TrainingRun(
                run_id=self.run_id,
                dataset=self.dataset,
                hyperparameters=dict(self.hyperparameters),
                backend=self.backend,
                started_at=self.when,
                base_model=self.base_model,
            )
            model.refresh_status()

    class TrainingJobSubmitted(Event):
        """The run's backend accepted it as a job of its own (an OpenAI fine-tuning job)."""

        run_id: str
        job_id: str

        def apply(self, aggregate: Aggregate) -> None:
            cast(AIModel, aggregate).training_runs[self.run_id].job_id = self.job_id

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

    class DeploymentRequested(Event):
        """A provider was asked to deploy (or take down) an environment's endpoint."""

        request_id: str
        action: str  # deploy | undeploy
        environment: str
        model_version: int | None  # deploy: the version to serve
        target: str

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            model.pending_deployments[self.environment] = DeploymentRequest(
                request_id=self.request_id,
                action=self.action,
                environment=self.environment,
                target=self.target,
                model_version=self.model_version,
            )

    class DeploymentFailed(Event):
        """The provider could not carry out the request; what served before still does."""

        request_id: str
        action: str
        environment: str
        reason: str

        def apply(self, aggregate: Aggregate) -> None:
            cast(AIModel, aggregate).pending_deployments.pop(self.environment, None)

    class ModelDeployed(Event):
        """v2 added ``target`` (who runs the endpoint) and ``endpoint_name`` (its name there)."""

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

        def apply(self, aggregate: Aggregate) -> None:
            model = cast(AIModel, aggregate)
            model.pending_deployments.pop(self.environment, None)
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
                target=self.target,
                endpoint_name=self.endpoint_name,
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
            model.pending_deployments.pop(self.environment, None)
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
    AIModel.TrainingJobSubmitted,
    AIModel.ModelTrained,
    AIModel.TrainingFailed,
    AIModel.DeploymentRequested,
    AIModel.DeploymentFailed,
    AIModel.ModelDeployed,
    AIModel.ModelRolledBack,
    AIModel.ModelUndeployed,
    AIModel.ModelArchived,
)
