"""The AIModel aggregate: a registered model, its training runs, versions and deployments.

Public methods check invariants and raise domain errors before anything is recorded,
then record inside ``acting(meta)`` (who and why) by calling an event method, from
write_model/events.py: what the event records, and what it changes in the model.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from write_model import events, training
from write_model.audit import Audited, acting
from write_model.deployments import (
    Deployment,
    DeploymentAction,
    DeploymentRequest,
    deployment_in,
    pending_request,
    require_no_pending,
    require_reported,
    version_to_deploy,
)
from write_model.errors import ManagedRun, ModelArchived, ModelStillDeployed, NothingToRollBack
from write_model.training import ModelVersion, RunState, TrainingRun, running, version_changes
from write_model.values import EXTERNAL, EventMetadata, ModelStatus, model_id_for, validate_metrics

MUTABLE_FIELDS = ("description", "task", "framework", "tags", "configuration", "owner")


class AIModel(Audited):
    # The events as AIModel's own: stored events name them write_model.model:AIModel.<Name>.
    class ModelCreated(events.ModelCreated): ...

    class ModelUpdated(events.ModelUpdated): ...

    class TrainingStarted(events.TrainingStarted): ...

    class TrainingJobSubmitted(events.TrainingJobSubmitted): ...

    class ModelTrained(events.ModelTrained): ...

    class VersionUpdated(events.VersionUpdated): ...

    class TrainingFailed(events.TrainingFailed): ...

    class DeploymentRequested(events.DeploymentRequested): ...

    class DeploymentFailed(events.DeploymentFailed): ...

    class ModelDeployed(events.ModelDeployed): ...

    class ModelRolledBack(events.ModelRolledBack): ...

    class ModelUndeployed(events.ModelUndeployed): ...

    class ModelArchived(events.ModelArchived): ...

    # Called as methods, these record their events (the library's @event).
    _updated = events.updated
    _training_started = events.training_started
    _job_submitted = events.job_submitted
    _trained = events.trained
    _version_updated = events.version_updated
    _training_failed = events.training_failed
    _deployment_requested = events.deployment_requested
    _deployment_failed = events.deployment_failed
    _deployed = events.deployed
    _rolled_back = events.rolled_back
    _undeployed = events.undeployed
    _archived = events.archived

    @staticmethod
    def create_id(project: str, name: str) -> UUID:
        return model_id_for(project, name)

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
        with acting(meta):
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
            )

    @event(ModelCreated)
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

    def update(self, changes: dict[str, Any], meta: EventMetadata) -> None:
        self._require_active()
        effective = {
            key: value
            for key, value in changes.items()
            if key in MUTABLE_FIELDS and getattr(self, key) != value
        }
        if effective:  # a no-op update records nothing
            with acting(meta):
                self._updated(effective)

    # -- training -----------------------------------------------------------

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
        with acting(meta):
            self._training_started(run_id, dataset, dict(hyperparameters), backend, base_model)

    def record_training_job(self, *, run_id: str, job_id: str, meta: EventMetadata) -> None:
        """The provider accepted the run as ``job_id`` (a resumed worker finds it here)."""
        if running(self.training_runs, run_id).job_id != job_id:
            with acting(meta):
                self._job_submitted(run_id, job_id)

    def import_version(
        self,
        *,
        run_id: str,
        source: str,
        dataset: str,
        metrics: dict[str, Any],
        output_model: str | None,
        artifact_uri: str | None,
        meta: EventMetadata,
        hyperparameters: dict[str, Any] | None = None,
        source_version: int | None = None,
        about: dict[str, Any] | None = None,
    ) -> int:
        """A version trained elsewhere (Hub, MLflow; once per ``source_version``)."""
        self._require_active()
        known = training.imported_number(self.versions, self.training_runs, source, source_version)
        if known is not None:
            return known
        valid = validate_metrics(metrics)
        params = hyperparameters or {}
        self.start_training(
            run_id=run_id, dataset=dataset, hyperparameters=params, backend=source, meta=meta
        )
        version = self.complete_training(
            run_id=run_id,
            metrics=valid,
            artifact_uri=artifact_uri,
            output_model=output_model,
            meta=meta,
            by_backend=True,
            source_version=source_version,
        )
        self.update_version(number=version, changes=dict(about or {}), meta=meta)
        return version

    def complete_training(
        self,
        *,
        run_id: str,
        metrics: dict[str, Any],
        artifact_uri: str | None,
        meta: EventMetadata,
        output_model: str | None = None,
        by_backend: bool = False,
        source_version: int | None = None,
    ) -> int:
        """``by_backend``: the run's own backend reports it (the provider worker, an import)."""
        self._require_active()
        backend = running(self.training_runs, run_id).backend
        if backend != EXTERNAL and not by_backend:
            raise ManagedRun(
                f"the {backend} backend records this run's outcome itself; fail the run to stop it",
                field="run_id",
            )
        version, valid = len(self.versions) + 1, validate_metrics(metrics)
        with acting(meta):
            self._trained(run_id, version, valid, artifact_uri, output_model, source_version)
        return version

    def update_version(self, *, number: int, changes: dict[str, Any], meta: EventMetadata) -> None:
        self._require_active()
        effective = version_changes(self.versions, number, changes)
        if effective:  # a no-op update records nothing
            with acting(meta):
                self._version_updated(number, effective)

    def fail_training(self, *, run_id: str, reason: str, meta: EventMetadata) -> None:
        self._require_active()
        running(self.training_runs, run_id)
        with acting(meta):
            self._training_failed(run_id, reason)

    # -- deployments --------------------------------------------------------

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
        if current is not None:
            target = current.target
            require_reported(current, f'deploy with "target": "{target}", or undeploy it first')
        same_endpoint = current is not None and endpoint_url in (None, current.endpoint_url)
        if current and current.model_version == version and same_endpoint:
            return version  # already serving exactly this: nothing to record
        previous = current.model_version if current else None
        with acting(meta):
            self._deployed(environment, version, previous, endpoint_url, EXTERNAL, None)
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
        deploy = DeploymentAction.DEPLOY
        with acting(meta):
            self._deployment_requested(request_id, deploy, environment, version, target)
        return version

    def request_undeployment(
        self, *, request_id: str, environment: str, meta: EventMetadata
    ) -> None:
        """Ask the provider to take its endpoint down; ModelUndeployed follows when it has."""
        current = self._changeable(environment)
        undeploy = DeploymentAction.UNDEPLOY
        with acting(meta):
            self._deployment_requested(request_id, undeploy, environment, None, current.target)

    def complete_deployment(
        self, *, request_id: str, endpoint_url: str | None, endpoint_name: str, meta: EventMetadata
    ) -> int | None:
        """The provider carried out ``request_id``: record what now serves (or nothing)."""
        request = pending_request(self.pending_deployments, request_id)
        environment, version = request.environment, request.model_version
        current = self.deployments.get(environment)
        with acting(meta):
            if request.action == DeploymentAction.UNDEPLOY:
                assert current is not None  # an undeploy is only asked of what serves
                self._undeployed(environment, current.model_version)
                return None
            assert version is not None  # a deploy names its version
            previous = current.model_version if current else None
            self._deployed(
                environment, version, previous, endpoint_url, request.target, endpoint_name
            )
        return version

    def fail_deployment(self, *, request_id: str, reason: str, meta: EventMetadata) -> None:
        request = pending_request(self.pending_deployments, request_id)
        with acting(meta):
            self._deployment_failed(request_id, request.action, request.environment, reason)

    def undeploy(self, *, environment: str, meta: EventMetadata) -> None:
        current = self._changeable(environment)
        require_reported(current, "its provider must take it down")
        with acting(meta):
            self._undeployed(environment, current.model_version)

    def roll_back(self, *, environment: str, meta: EventMetadata) -> int:
        current = self._changeable(environment)
        target = current.target
        require_reported(current, f'deploy the version to go back to with "target": "{target}"')
        back = current.rollback_target
        if back is None:
            raise NothingToRollBack(
                f"{environment!r} has no earlier version to roll back to", field="environment"
            )
        version, endpoint_url = back
        with acting(meta):
            self._rolled_back(environment, version, current.model_version, endpoint_url)
        return version

    # -- archiving ----------------------------------------------------------

    def archive(self, *, reason: str, meta: EventMetadata) -> None:
        self._require_active()
        if self.deployments or self.pending_deployments:
            raise ModelStillDeployed(
                "undeploy the model from "
                + ", ".join(sorted({*self.deployments, *self.pending_deployments}))
                + " before archiving it",
                field="model_id",
            )
        running = [r.run_id for r in self.training_runs.values() if r.state == RunState.RUNNING]
        with acting(meta):
            # A run of an archived model could never finish: end it, with the reason.
            for run_id in running:
                self._training_failed(run_id, "model archived" + (f": {reason}" if reason else ""))
            self._archived(reason)

    # -- invariants ---------------------------------------------------------

    def _require_active(self) -> None:
        if self.archived:
            raise ModelArchived(
                "the model is archived; its history stays readable", field="model_id"
            )

    def _deployable(self, environment: str, model_version: int | None) -> int:
        self._require_active()
        require_no_pending(self.pending_deployments, environment)
        return version_to_deploy(model_version, latest=len(self.versions))

    def _changeable(self, environment: str) -> Deployment:
        """What the environment serves, if nothing is pending there."""
        self._require_active()
        current = deployment_in(self.deployments, environment)
        require_no_pending(self.pending_deployments, environment)
        return current

    def refresh_status(self) -> None:
        last = self.training_runs.get(self.last_finished_run or "")
        self.status = ModelStatus.derive(
            archived=self.archived,
            deployed=bool(self.deployments),
            training=any(run.state == RunState.RUNNING for run in self.training_runs.values()),
            last_run_failed=last is not None and last.state == RunState.FAILED,
            trained=bool(self.versions),
        )


EVENT_TYPES: tuple[type[AIModel.Event], ...] = (
    AIModel.ModelCreated,
    AIModel.ModelUpdated,
    AIModel.TrainingStarted,
    AIModel.TrainingJobSubmitted,
    AIModel.ModelTrained,
    AIModel.VersionUpdated,
    AIModel.TrainingFailed,
    AIModel.DeploymentRequested,
    AIModel.DeploymentFailed,
    AIModel.ModelDeployed,
    AIModel.ModelRolledBack,
    AIModel.ModelUndeployed,
    AIModel.ModelArchived,
)
