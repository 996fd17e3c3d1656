"""All projections of one process: started by `serve` (embedded) or `modelledger project`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from projections.applying import ensure_projection
from projections.base import Projection
from projections.catalogue import CatalogueProjection
from projections.deployments import DeploymentsProjection
from projections.keys import KeysProjection
from projections.runner import ProjectionRunner, RunnerOptions
from projections.timeline import TimelineProjection
from projections.versions import VersionsProjection
from projections.webhooks import WebhooksProjection
from queries.ports import EventLog
from read_model.holders import holder_identity

PROJECTIONS: tuple[type[Projection], ...] = (
    CatalogueProjection,
    VersionsProjection,
    DeploymentsProjection,
    TimelineProjection,
    KeysProjection,
    WebhooksProjection,
)


def projection_named(name: str) -> type[Projection]:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    raise KeyError(name)


def worker_identity() -> str:
    """``host:pid:random;start=...;ns=...``: a lease of a process that is gone is taken at once."""
    return holder_identity()


def ensure_projections(engine: Engine) -> None:
    """The state rows and tables, for a process that does not run the projections
    (a failure stays until a worker restarts with the fix)."""
    for projection in PROJECTIONS:
        ensure_projection(engine, projection, clear_failure=False)


@dataclass
class ProjectionWorker:
    engine: Engine
    event_log: EventLog
    options: RunnerOptions = field(default_factory=RunnerOptions)
    projections: tuple[type[Projection], ...] = PROJECTIONS
    owner: str = field(default_factory=worker_identity)
    on_commit: Callable[[str, int, int], None] | None = None

    def __post_init__(self) -> None:
        self.runners = [
            ProjectionRunner(
                p, self.engine, self.event_log, self.owner, self.options, self.on_commit
            )
            for p in self.projections
        ]

    def start(self) -> None:
        for projection in self.projections:
            ensure_projection(self.engine, projection)
        for runner in self.runners:
            self.event_log.doorbells.append(runner.ring)
            runner.start()

    def stop(self) -> None:
        for runner in self.runners:
            runner.stopping.set()
            if runner.follower is not None:
                runner.follower.close()
        for runner in self.runners:
            runner.stop()
            if runner.ring in self.event_log.doorbells:
                self.event_log.doorbells.remove(runner.ring)

    def errors(self) -> dict[str, str]:
        """In-process trouble not yet in the state rows (a database that is down)."""
        return {r.projection.name: r.last_error for r in self.runners if r.last_error}
