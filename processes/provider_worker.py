"""The provider worker: a process manager that carries out what providers must do.

Its intake (processes/provider_intake.py) turns the log's requests into jobs. Each
open job is then worked a step at a time under a lease: submit it, check on it
with a growing pause, and when the provider is done issue the completing command,
whose events name the requesting event as their cause and share its correlation id.

A restart resumes from the log: the jobs table and the intake's position commit
together, and a provider's job id is in the log (TrainingJobSubmitted) once known.
A job leased by a worker whose process has ended on this host is taken at once; one
leased by a worker elsewhere, once the lease has run out (read_model/holders.py).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import Engine

from commands.errors import ConcurrentChange
from commands.handlers import handle_sync
from commands.messages import (
    HUB_REPO_ID,
    Command,
    CompleteDeployment,
    CompleteTraining,
    FailDeployment,
    FailTraining,
    RecordTrainingJob,
)
from commands.ports import (
    Deployer,
    EndpointSpec,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    StoreUnavailable,
    Trainer,
    TrainingJob,
)
from commands.registry import CommandContext, ModelRegistry
from processes import provider_jobs as jobs
from processes.provider_intake import LogIntake
from queries.ports import EventLog, LogUnavailable
from write_model.errors import (
    DeploymentRequestNotFound,
    InvalidValue,
    ModelArchived,
    ModelNotFound,
    TrainingRunFinished,
    TrainingRunNotFound,
)

log = logging.getLogger("modelledger.worker")

# The run or request was settled meanwhile (through the API, by an archive): nothing is left to do.
SETTLED = (
    TrainingRunFinished,
    TrainingRunNotFound,
    DeploymentRequestNotFound,
    ModelArchived,
    ModelNotFound,
)
MAX_CANCEL_CHECKS = 10


@dataclass
class WorkerOptions:
    poll_seconds: float = 1.0  # how often the log and the due jobs are looked at
    first_check_seconds: float = 2.0  # the pause after a step; it doubles per check
    max_pause_seconds: float = 60.0
    lease_seconds: float = 60.0  # longer than one step's provider calls
    training_timeout_seconds: float = 86_400.0
    deployment_timeout_seconds: float = 3_600.0
    batch_size: int = 500
    pages_per_step: int = 20  # a long log is taken in over several steps, jobs between


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
    _ready: bool = False

    def __post_init__(self) -> None:
        self.intake = LogIntake(EventLog.of(self.registry), self.engine, self.options.batch_size)

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

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except (StoreUnavailable, LogUnavailable) as error:
                log.warning("provider worker paused: %s", error.detail)
            except Exception:  # the worker must outlive any one failure; it retries
                log.exception("provider worker step failed; retrying")
            self.stopping.wait(self.options.poll_seconds)

    def step(self) -> None:
        """Take in what the log added, then work each due job once."""
        if not self._ready:  # two processes starting at once may race to create them
            self.intake.ensure_tables()
            self._ready = True
        for _ in range(self.options.pages_per_step):
            if not self.intake.take_in():
                break
        for _ in range(20):  # one claim at a time: a lease runs from when its work starts
            if self.stopping.is_set():
                return
            job = self._claim()
            if job is None:
                return
            self.work_on(job)

    def _claim(self) -> jobs.ProviderJob | None:
        with self.engine.begin() as conn:
            claimed = jobs.claim_due(
                conn, self.owner, self.clock(), self.options.lease_seconds, limit=1
            )
            return jobs.read_job(conn, claimed[0]) if claimed else None

    # -- working on one job ---------------------------------------------------

    def work_on(self, job: jobs.ProviderJob) -> None:
        try:
            if job.kind == "train":
                self._train(job)
            elif job.kind == "cancel":
                self._cancel(job)
            else:
                self._deploy(job)
        except (ProviderUnavailable, StoreUnavailable, ConcurrentChange) as error:
            reason = getattr(error, "reason", None) or str(error)
            log.warning("%s job %s: %s (will retry)", job.backend, job.id, reason)
            self._check_again(job, reason)
        except ProviderRejected as error:
            log.info("%s job %s refused: %s", job.backend, job.id, error.reason)
            self._fail(job, error.reason)
        except InvalidValue as error:  # what the provider reported breaks a rule (a metric)
            self._fail(job, f"the {job.backend} result was refused: {error.detail}")
        except SETTLED as error:
            log.info("%s job %s closed: %s", job.backend, job.id, error.detail)
            self._close(job)
        except Exception as error:  # a bug or a surprise: logged, retried after the pause
            log.exception("%s job %s failed unexpectedly; will retry", job.backend, job.id)
            self._check_again(job, f"{type(error).__name__}: {error}")

    def _train(self, job: jobs.ProviderJob) -> None:
        if self._timed_out(job, self.options.training_timeout_seconds):
            if job.provider_ref is not None and job.backend in self.trainers:
                self.trainers[job.backend].cancel(job.provider_ref)
            raise ProviderRejected(self._timeout_reason(self.options.training_timeout_seconds))
        trainer = self.trainers.get(job.backend)
        if trainer is None:
            raise ProviderUnavailable(f"no {job.backend} trainer is configured in this worker")
        if job.provider_ref is None:
            self._submit(job, trainer)
            return
        progress = trainer.progress(job.provider_ref)
        if progress.state == "running":
            log.debug("%s job %s: %s", job.backend, job.provider_ref, progress.detail)
            self._check_again(job)
        elif progress.state == "failed":
            self._fail(job, progress.reason)
        else:
            completed = CompleteTraining(
                model_id=UUID(job.model_id),
                run_id=job.id,
                metrics=progress.metrics,
                artifact_uri=progress.artifact_uri,
                output_model=progress.output_model,
                by_backend=True,
            )
            self._issue(job, completed)
            self._close(job)

    def _submit(self, job: jobs.ProviderJob, trainer: Trainer) -> None:
        model = self.registry.load(UUID(job.model_id), CommandContext())
        job_id = trainer.submit(
            TrainingJob(
                run_id=job.id,
                model_name=model.name,
                dataset=job.spec["dataset"],
                base_model=job.spec["base_model"],
                hyperparameters=dict(job.spec["hyperparameters"]),
            )
        )
        recorded = RecordTrainingJob(model_id=UUID(job.model_id), run_id=job.id, job_id=job_id)
        self._issue(job, recorded)
        with self.engine.begin() as conn:
            jobs.note_provider_ref(conn, job.id, job_id)
        self._check_again(job)

    def _cancel(self, job: jobs.ProviderJob) -> None:
        """The run was failed by someone else: stop paying for its job."""
        trainer = self.trainers.get(job.backend)
        if trainer is not None and job.provider_ref is not None:
            try:
                trainer.cancel(job.provider_ref)
            except ProviderRejected as error:  # it had ended already
                log.info("%s job %s not cancelled: %s", job.backend, job.id, error.reason)
            except ProviderUnavailable:
                if job.checks < MAX_CANCEL_CHECKS:
                    raise
        self._close(job)

    def _deploy(self, job: jobs.ProviderJob) -> None:
        if self._timed_out(job, self.options.deployment_timeout_seconds):
            raise ProviderRejected(self._timeout_reason(self.options.deployment_timeout_seconds))
        deployer = self.deployers.get(job.backend)
        if deployer is None:
            raise ProviderUnavailable(f"no {job.backend} deployer is configured in this worker")
        name = self._endpoint_name(job, deployer)
        if job.kind == "undeploy":
            progress = deployer.release(name)
        else:
            spec = self._endpoint_spec(job, name)
            if job.provider_ref is None:
                deployer.deploy(spec)
                with self.engine.begin() as conn:
                    jobs.note_provider_ref(conn, job.id, name)
                job = dataclasses.replace(job, provider_ref=name)
            progress = deployer.progress(name, spec)
        carried_out = "running" if job.kind == "deploy" else "gone"
        if progress.state == "failed":
            self._fail(job, progress.reason)
        elif progress.state == carried_out:
            done = CompleteDeployment(
                model_id=UUID(job.model_id),
                request_id=job.id,
                endpoint_name=name,
                endpoint_url=progress.url,
            )
            self._issue(job, done)
            self._close(job)
        else:
            self._check_again(job)

    def _endpoint_name(self, job: jobs.ProviderJob, deployer: Deployer) -> str:
        """The name on record for what the environment serves, else the deployer's rule."""
        environment = job.environment or ""
        model = self.registry.load(UUID(job.model_id), CommandContext())
        served = model.deployments.get(environment)
        if served is not None and served.target == job.backend and served.endpoint_name:
            return served.endpoint_name
        return deployer.endpoint_name(job.model_id, environment)

    def _endpoint_spec(self, job: jobs.ProviderJob, name: str) -> EndpointSpec:
        model = self.registry.load(UUID(job.model_id), CommandContext())
        version = model.versions[int(job.spec["model_version"]) - 1]
        if not version.output_model or not re.fullmatch(HUB_REPO_ID, version.output_model):
            raise ProviderRejected(
                f"version {version.number} names no Hub repository to serve "
                f"(its output_model is {version.output_model!r})"
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
        reason = _one_line(reason) or "the provider gave no reason"
        command: Command
        if job.kind == "train":
            command = FailTraining(model_id=UUID(job.model_id), run_id=job.id, reason=reason)
        else:
            command = FailDeployment(model_id=UUID(job.model_id), request_id=job.id, reason=reason)
        self._issue(job, command)
        self._close(job)
        if job.kind == "deploy":
            self._release_unserved(job)

    def _release_unserved(self, job: jobs.ProviderJob) -> None:
        """A first deployment that failed leaves no endpoint behind to pay for (one that
        serves the environment already stays: it still serves the earlier version)."""
        deployer = self.deployers.get(job.backend)
        if deployer is None or job.provider_ref is None:
            return
        model = self.registry.load(UUID(job.model_id), CommandContext())
        if (job.environment or "") in model.deployments:
            return
        try:
            deployer.release(job.provider_ref)
        except ProviderError as error:
            log.warning("endpoint %s not released: %s", job.provider_ref, error.reason)

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


def _one_line(text: str) -> str:
    """A provider's message as one printable line, short enough for an event."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:1000]


def _revision(artifact_uri: str | None) -> str | None:
    """An imported version's artifact is ``<repository URL>/tree/<revision>``."""
    if artifact_uri and "/tree/" in artifact_uri:
        return artifact_uri.rsplit("/tree/", 1)[1] or None
    return None
