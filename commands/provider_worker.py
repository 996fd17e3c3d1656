"""The provider worker: a process manager that carries out what providers must do.

It follows the log. A training run for a provider backend (TrainingStarted with
backend "openai") or a deployment request for a provider target (DeploymentRequested
for "huggingface") opens a job; the job's outcome in the log (ModelTrained,
TrainingFailed, ModelDeployed, ModelUndeployed, DeploymentFailed) closes it. Each
open job is then worked a step at a time under a lease: submit it, check on it with
a growing pause, and when the provider is done issue the completing command, whose
events name the requesting event as their cause and share its correlation id.

A restart resumes from the log: the jobs table and the worker's position commit
together, and a provider's job id is in the log (TrainingJobSubmitted) once known.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from commands.errors import StoreUnavailable
from commands.handlers import handle_sync
from commands.messages import (
    Command,
    CompleteDeployment,
    CompleteTraining,
    FailDeployment,
    FailTraining,
    RecordTrainingJob,
)
from commands.providers import (
    Deployer,
    EndpointSpec,
    ProviderRejected,
    ProviderUnavailable,
    Trainer,
    TrainingJob,
)
from commands.registry import CommandContext, ModelRegistry, store_errors
from read_model import provider_jobs as jobs
from read_model.relay import record_relayed, relayed_position
from write_model.errors import DomainError
from write_model.model import AIModel
from write_model.values import EXTERNAL

log = logging.getLogger("modelledger.worker")

WORKER_NAME = "provider-worker"  # its row in relay_state

TOPICS = (
    AIModel.TrainingStarted,
    AIModel.TrainingJobSubmitted,
    AIModel.ModelTrained,
    AIModel.TrainingFailed,
    AIModel.DeploymentRequested,
    AIModel.DeploymentFailed,
    AIModel.ModelDeployed,
    AIModel.ModelUndeployed,
)


@dataclass
class WorkerOptions:
    poll_seconds: float = 1.0  # how often the log and the due jobs are looked at
    first_check_seconds: float = 2.0  # the pause after a step; it doubles per check
    max_pause_seconds: float = 60.0
    lease_seconds: float = 60.0  # longer than any one provider call
    training_timeout_seconds: float = 86_400.0
    deployment_timeout_seconds: float = 3_600.0
    batch_size: int = 500


@dataclass
class ProviderWorker:
    registry: ModelRegistry
    engine: Engine  # where the jobs table and the worker's position live
    owner: str
    trainers: Mapping[str, Trainer] = field(default_factory=dict)
    deployers: Mapping[str, Deployer] = field(default_factory=dict)
    options: WorkerOptions = field(default_factory=WorkerOptions)
    clock: Callable[[], float] = time.time
    stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _topics: frozenset[str] = frozenset(get_topic(t) for t in TOPICS)

    # -- running --------------------------------------------------------------

    def start(self) -> ProviderWorker:
        """In a thread of this process (`serve`'s embedded default)."""
        self._thread = threading.Thread(target=self.run, name="provider-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run(self) -> None:
        with self.engine.begin() as conn:
            jobs.ensure_jobs_table(conn)
        while not self.stopping.is_set():
            try:
                self.step()
            except (StoreUnavailable, OperationalError) as error:
                log.warning("provider worker paused: %s", error)
            self.stopping.wait(self.options.poll_seconds)

    def step(self) -> None:
        """Take in what the log added, then work each due job once."""
        while self.take_in() == self.options.batch_size:
            pass
        now = self.clock()
        with self.engine.begin() as conn:
            claimed = jobs.claim_due(conn, self.owner, now, self.options.lease_seconds, 20)
        for job_id in claimed:
            if self.stopping.is_set():
                break
            with self.engine.begin() as conn:
                job = jobs.read_job(conn, job_id)
            if job is not None:
                self.work_on(job)

    # -- taking in the log ----------------------------------------------------

    def take_in(self) -> int:
        with self.engine.begin() as conn:
            jobs.ensure_jobs_table(conn)
            after = relayed_position(conn, WORKER_NAME)
        page = self._page(after)
        if page:
            with self.engine.begin() as conn:
                for notification in page:
                    if notification.topic in self._topics:
                        event = self.registry.mapper.to_domain_event(notification)
                        self._note(conn, event)
                # Every event read counts, so the position is the log's (its lag is real).
                record_relayed(conn, WORKER_NAME, page[-1].id)
        return len(page)

    def _page(self, after: int) -> Sequence[Notification]:
        with store_errors():
            return self.registry.recorder.select_notifications(
                start=after, limit=self.options.batch_size, inclusive_of_start=False
            )

    def _note(self, conn: Connection, event: Any) -> None:
        if isinstance(event, AIModel.TrainingStarted | AIModel.DeploymentRequested):
            opened = _job_opened_by(event)
            if opened is not None:
                jobs.open_job(conn, opened)
        elif isinstance(event, AIModel.TrainingJobSubmitted):
            jobs.note_provider_ref(conn, event.run_id, event.job_id)
        elif isinstance(event, AIModel.ModelTrained | AIModel.TrainingFailed):
            jobs.close_job(conn, event.run_id)
        elif isinstance(event, AIModel.ModelDeployed | AIModel.ModelUndeployed):
            jobs.close_environment(conn, str(event.originator_id), event.environment)
        elif isinstance(event, AIModel.DeploymentFailed):
            jobs.close_job(conn, event.request_id)

    # -- working on one job ---------------------------------------------------

    def work_on(self, job: jobs.ProviderJob) -> None:
        try:
            if job.kind == "train":
                self._train(job)
            else:
                self._deploy(job)
        except ProviderUnavailable as error:
            log.warning("%s job %s: %s (will retry)", job.backend, job.id, error.reason)
            self._check_again(job, error.reason)
        except ProviderRejected as error:
            log.info("%s job %s rejected: %s", job.backend, job.id, error.reason)
            self._fail(job, error.reason)
        except DomainError as error:
            # The run or request was settled meanwhile (through the API, or by an
            # archive): there is nothing left to do for it.
            log.info("%s job %s closed: %s", job.backend, job.id, error.detail)
            self._close(job)

    def _train(self, job: jobs.ProviderJob) -> None:
        trainer = self.trainers.get(job.backend)
        if trainer is None:
            raise ProviderUnavailable(f"no {job.backend} trainer is configured in this worker")
        if self._timed_out(job, self.options.training_timeout_seconds):
            if job.provider_ref is not None:
                trainer.cancel(job.provider_ref)
            raise ProviderRejected(self._timeout_reason(self.options.training_timeout_seconds))
        if job.provider_ref is None:
            job_id = trainer.submit(self._training_job(job))
            self._issue(
                job, RecordTrainingJob(model_id=UUID(job.model_id), run_id=job.id, job_id=job_id)
            )
            with self.engine.begin() as conn:
                jobs.note_provider_ref(conn, job.id, job_id)
            self._check_again(job)
            return
        progress = trainer.progress(job.provider_ref)
        if progress.state == "running":
            log.debug("%s job %s: %s", job.backend, job.provider_ref, progress.detail)
            self._check_again(job)
        elif progress.state == "failed":
            self._fail(job, progress.reason)
        else:
            self._issue(
                job,
                CompleteTraining(
                    model_id=UUID(job.model_id),
                    run_id=job.id,
                    metrics=progress.metrics,
                    artifact_uri=progress.artifact_uri,
                    output_model=progress.output_model,
                ),
            )
            self._close(job)

    def _training_job(self, job: jobs.ProviderJob) -> TrainingJob:
        model = self.registry.load(UUID(job.model_id), CommandContext())
        return TrainingJob(
            run_id=job.id,
            model_name=model.name,
            dataset=job.spec["dataset"],
            base_model=job.spec["base_model"],
            hyperparameters=dict(job.spec["hyperparameters"]),
        )

    def _deploy(self, job: jobs.ProviderJob) -> None:
        deployer = self.deployers.get(job.backend)
        if deployer is None:
            raise ProviderUnavailable(f"no {job.backend} deployer is configured in this worker")
        if self._timed_out(job, self.options.deployment_timeout_seconds):
            raise ProviderRejected(self._timeout_reason(self.options.deployment_timeout_seconds))
        name = self._endpoint_name(job)
        if job.kind == "undeploy":
            progress = deployer.release(name)
        else:
            if job.provider_ref is None:
                deployer.deploy(self._endpoint_spec(job, name))
                with self.engine.begin() as conn:
                    jobs.note_provider_ref(conn, job.id, name)
            progress = deployer.progress(name)
        carried_out = "running" if job.kind == "deploy" else "gone"
        if progress.state == "failed":
            self._fail(job, progress.reason)
        elif progress.state == carried_out:
            self._issue(
                job,
                CompleteDeployment(
                    model_id=UUID(job.model_id),
                    request_id=job.id,
                    endpoint_name=name,
                    endpoint_url=progress.url,
                ),
            )
            self._close(job)
        else:
            self._check_again(job)

    def _endpoint_name(self, job: jobs.ProviderJob) -> str:
        if job.kind == "undeploy":
            model = self.registry.load(UUID(job.model_id), CommandContext())
            served = model.deployments.get(job.environment or "")
            if served is not None and served.endpoint_name:
                return served.endpoint_name
        return endpoint_name(job.model_id, job.environment or "")

    def _endpoint_spec(self, job: jobs.ProviderJob, name: str) -> EndpointSpec:
        model = self.registry.load(UUID(job.model_id), CommandContext())
        version = model.versions[int(job.spec["model_version"]) - 1]
        if not version.output_model:
            raise ProviderRejected(
                f"version {version.number} names no model to serve (its output_model is empty)"
            )
        return EndpointSpec(
            name=name,
            repository=version.output_model,
            revision=_revision(version.artifact_uri),
            task=model.task,
            framework=model.framework,
        )

    # -- outcomes -------------------------------------------------------------

    def _fail(self, job: jobs.ProviderJob, reason: str) -> None:
        reason = (reason or "the provider gave no reason")[:1000]
        command: Command
        if job.kind == "train":
            command = FailTraining(model_id=UUID(job.model_id), run_id=job.id, reason=reason)
        else:
            command = FailDeployment(model_id=UUID(job.model_id), request_id=job.id, reason=reason)
        self._issue(job, command)
        self._close(job)

    def _issue(self, job: jobs.ProviderJob, command: Command) -> None:
        ctx = CommandContext(
            actor=f"{job.backend}-worker",
            correlation_id=job.correlation_id,
            command_id=job.cause,  # the events' cause: the request they answer
        )
        handle_sync(self.registry, command, ctx)

    def _close(self, job: jobs.ProviderJob) -> None:
        with self.engine.begin() as conn:
            jobs.close_job(conn, job.id)

    def _check_again(self, job: jobs.ProviderJob, error: str | None = None) -> None:
        pause = min(
            self.options.first_check_seconds * 2 ** min(job.checks, 20),
            self.options.max_pause_seconds,
        )
        with self.engine.begin() as conn:
            jobs.check_again(conn, job.id, self.owner, self.clock() + pause, error)

    def _timed_out(self, job: jobs.ProviderJob, limit: float) -> bool:
        return self.clock() - job.opened_at > limit

    @staticmethod
    def _timeout_reason(limit: float) -> str:
        return f"timed out: not finished {limit:g} s after it was requested"


# Backends whose versions were trained before ModelLedger saw them (the Hub importer).
TRAINED_ELSEWHERE = frozenset({"huggingface"})


def _job_opened_by(
    event: AIModel.TrainingStarted | AIModel.DeploymentRequested,
) -> dict[str, Any] | None:
    """The job row a request opens, or None when no provider has work to do."""
    model_id = str(event.originator_id)
    row: dict[str, Any] = {
        "model_id": model_id,
        "cause": f"{model_id}/{event.originator_version}",
        "correlation_id": event.correlation_id,
        "opened_at": event.timestamp.timestamp(),
    }
    if isinstance(event, AIModel.DeploymentRequested):
        spec: dict[str, Any] = {"model_version": event.model_version}
        kind, backend = event.action, event.target
        return {
            **row,
            "id": event.request_id,
            "kind": kind,
            "backend": backend,
            "environment": event.environment,
            "spec": spec,
        }
    if event.backend == EXTERNAL or event.backend in TRAINED_ELSEWHERE:
        return None
    spec = {
        "dataset": event.dataset,
        "base_model": event.base_model,
        "hyperparameters": dict(event.hyperparameters),
    }
    return {**row, "id": event.run_id, "kind": "train", "backend": event.backend, "spec": spec}


def endpoint_name(model_id: str, environment: str) -> str:
    """Stable per (model, environment), and within the Hub's rules: at most 32
    characters, lower-case letters, digits and hyphens."""
    return f"ml-{model_id.replace('-', '')[:16]}-{environment.replace('_', '-')}"[:32].rstrip("-")


def _revision(artifact_uri: str | None) -> str | None:
    """An imported version's artifact is ``<repository URL>/tree/<revision>``."""
    if artifact_uri and "/tree/" in artifact_uri:
        return artifact_uri.rsplit("/tree/", 1)[1] or None
    return None
