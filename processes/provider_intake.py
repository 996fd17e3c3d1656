"""The provider worker's intake: the log's requests and outcomes -> the jobs table.

A training run on a provider backend or a request to a provider target opens a
job; its outcome closes it; a run failed by anyone else (the API, an archive)
while its provider job runs has that job cancelled. The table and the intake's
position commit together, and two workers never take in the same page (the
position only moves from where each read it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine

from processes import provider_jobs as jobs
from processes.positions import advance_relayed, relayed_position
from queries.ports import EventLog
from read_model.relay import PROVIDER_INTAKE
from write_model.model import AIModel
from write_model.values import EXTERNAL

# Backends whose versions were trained before ModelLedger saw them (the Hub importer).
TRAINED_ELSEWHERE = frozenset({"huggingface"})

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


OPENING_TOPICS = frozenset(
    get_topic(t) for t in (AIModel.TrainingStarted, AIModel.DeploymentRequested)
)


@dataclass(frozen=True)
class IntakePage:
    after: int  # the position it was read from
    reached: int  # the position it takes the intake to
    page: Sequence[Notification]  # the events of interest in between


@dataclass
class LogIntake:
    event_log: EventLog
    engine: Engine
    batch_size: int = 500

    def ensure_tables(self) -> None:
        with self.engine.begin() as conn:
            jobs.ensure_jobs_table(conn)
            relayed_position(conn, PROVIDER_INTAKE)

    def take_in(self) -> int:
        """One page of the log up to its head: how far it moved (0 at the head)."""
        read = self.read()
        return read.reached - read.after if read is not None and self.apply(read) else 0

    def read(self) -> IntakePage | None:
        """The next page after the recorded position (None at the head)."""
        with self.engine.begin() as conn:
            after = relayed_position(conn, PROVIDER_INTAKE)
        head = self.event_log.head()
        if head <= after:
            return None
        page = self._page(after, head)
        # A full page may end before the head; a shorter one has read everything to it.
        reached = page[-1].id if len(page) == self.batch_size else head
        return IntakePage(after, reached, page)

    def apply(self, read: IntakePage) -> bool:
        """The page's jobs and the new position, together; False if another worker
        took this page in first (then nothing changes)."""
        with self.engine.begin() as conn:
            if not advance_relayed(conn, PROVIDER_INTAKE, read.after, read.reached):
                return False
            # Most events are of models no provider works on: those are not even decoded.
            watched = jobs.models_with_open_jobs(conn)
            for notification in read.page:
                opens = notification.topic in OPENING_TOPICS
                if opens or str(notification.originator_id) in watched:
                    event = self.event_log.decode(notification)
                    if self._note(conn, event):
                        watched.add(str(event.originator_id))
        return True

    def _page(self, after: int, head: int) -> Sequence[Notification]:
        topics = [get_topic(t) for t in TOPICS]
        return self.event_log.page(after, self.batch_size, until=head, topics=topics)

    @staticmethod
    def _note(conn: Connection, event: Any) -> bool:
        """Change the jobs for one event: True if it opened one."""
        if isinstance(event, AIModel.TrainingStarted | AIModel.DeploymentRequested):
            opened = job_opened_by(event)
            if opened is not None:
                jobs.open_job(conn, opened)
            return opened is not None
        if isinstance(event, AIModel.TrainingJobSubmitted):
            jobs.note_provider_ref(conn, event.run_id, event.job_id)
        elif isinstance(event, AIModel.ModelTrained):
            jobs.close_job(conn, event.run_id)
        elif isinstance(event, AIModel.TrainingFailed):
            jobs.cancel_or_close(conn, event.run_id)
        elif isinstance(event, AIModel.ModelDeployed | AIModel.ModelUndeployed):
            # One request per environment is ever pending, and pages are taken in
            # log order: the outcome settles the request open there.
            jobs.close_environment(conn, str(event.originator_id), event.environment)
        elif isinstance(event, AIModel.DeploymentFailed):
            jobs.close_job(conn, event.request_id)
        return False


def job_opened_by(
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
        return {
            **row,
            "id": event.request_id,
            "kind": event.action,
            "backend": event.target,
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
