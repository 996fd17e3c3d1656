"""The projection worker keeps the rows it wrote for its next batches
(projections.kept), and what it keeps is never staler than the tables: a model it
changes again is read from memory only while nothing else can have written it.

Every story runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.exc import OperationalError

from commands.handlers import handle_sync
from commands.messages import (
    CompleteTraining,
    CreateModel,
    DeployModel,
    TrainModel,
    UpdateModel,
)
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from projections.catalogue import CatalogueProjection
from projections.kept import KeptRows
from projections.runner import ProjectionRunner, RunnerOptions
from projections.timeline import TimelineProjection
from projections.verify import verify_projection
from projections.worker import ensure_projections
from tests.support.histories import head
from tests.support.running import states
from write_model.model import AIModel

CTX = CommandContext(actor="tester")
LEASE = 0.3


def runner_for(
    ledger: Ledger, projection: type[CatalogueProjection], owner: str
) -> ProjectionRunner:
    options = RunnerOptions(
        batch_size=10, lease_seconds=LEASE, linger_seconds=0.0, retry_seconds=0.01
    )
    return ProjectionRunner(projection, ledger.write_engine, ledger.event_log, owner, options)


def step_to_head(runner: ProjectionRunner, ledger: Ledger) -> None:
    """Step as ``run`` does (errors handled alike) until the projection is at the head."""
    for _ in range(100):
        if states(ledger)[runner.projection.name].position >= head(ledger.registry):
            return
        runner.step_safely()
    raise AssertionError(f"{runner.projection.name} did not reach the head")


def a_model(ledger: Ledger) -> UUID:
    created = handle_sync(
        ledger.registry, CreateModel(name="kept", project="p", task="t", framework="f"), CTX
    )
    return UUID(created.id)


def consistent(ledger: Ledger, projection: type[CatalogueProjection]) -> None:
    verdict = verify_projection(ledger.write_engine, ledger.event_log, projection)
    assert verdict.consistent, verdict.differences


def test_a_model_changed_again_is_projected_from_what_the_worker_kept(ledger: Ledger) -> None:
    # Given a worker that has projected a new model
    ensure_projections(ledger.write_engine)
    model_id = a_model(ledger)
    runners = [runner_for(ledger, p, "worker-a") for p in (CatalogueProjection, TimelineProjection)]
    for runner in runners:
        step_to_head(runner, ledger)
        # Then it keeps the row it wrote
        assert str(model_id) in runner.kept.items
    # When the model is trained, completed and deployed, batch after batch
    run = handle_sync(ledger.registry, TrainModel(model_id=model_id, dataset="d"), CTX)
    for runner in runners:
        step_to_head(runner, ledger)
    complete = CompleteTraining(
        model_id=model_id, run_id=run.details["run_id"], metrics={"accuracy": 0.9}
    )
    handle_sync(ledger.registry, complete, CTX)
    deploy = DeployModel(model_id=model_id, environment="prod", model_version=1)
    handle_sync(ledger.registry, deploy, CTX)
    for runner in runners:
        step_to_head(runner, ledger)
        runner.stop()
    # Then the tables are what a rebuild from the log gives
    consistent(ledger, CatalogueProjection)
    consistent(ledger, TimelineProjection)


def test_a_worker_that_lost_its_lease_reads_the_tables_again(ledger: Ledger) -> None:
    # Given worker A has projected a model and keeps its row
    ensure_projections(ledger.write_engine)
    model_id = a_model(ledger)
    a = runner_for(ledger, CatalogueProjection, "worker-a")
    b = runner_for(ledger, CatalogueProjection, "worker-b")
    step_to_head(a, ledger)
    assert str(model_id) in a.kept.items
    # When A's lease runs out and worker B projects the model's next change
    handle_sync(ledger.registry, TrainModel(model_id=model_id, dataset="d"), CTX)
    time.sleep(LEASE + 0.1)
    step_to_head(b, ledger)
    b.stop()
    # and A takes the projection back for the change after that (one that any row of
    # the model takes without complaint)
    update = UpdateModel(model_id=model_id, description="after B")
    handle_sync(ledger.registry, update, CTX)
    step_to_head(a, ledger)
    a.stop()
    # Then A worked from B's row, not from the one it kept: the tables equal a rebuild
    assert states(ledger)["catalogue"].status == "running"
    consistent(ledger, CatalogueProjection)


class CatalogueThatLosesTheDatabaseOnce(CatalogueProjection):
    """The database goes away once, at the end of a batch of two or more events,
    after the batch has changed its rows in memory."""

    failed = False

    def prepare(self, events: Sequence[tuple[int, AIModel.Event]]) -> None:
        self.batch_events = len(events)
        super().prepare(events)

    def flush(self) -> None:
        super().flush()
        if self.batch_events > 1 and not CatalogueThatLosesTheDatabaseOnce.failed:
            CatalogueThatLosesTheDatabaseOnce.failed = True
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))


def test_a_batch_retried_after_an_outage_counts_each_change_once(ledger: Ledger) -> None:
    # Given a worker that keeps a model's row
    ensure_projections(ledger.write_engine)
    model_id = a_model(ledger)
    runner = runner_for(ledger, CatalogueThatLosesTheDatabaseOnce, "worker-a")
    CatalogueThatLosesTheDatabaseOnce.failed = False
    step_to_head(runner, ledger)
    # When a batch of two of its changes loses the database after changing the row in
    # memory, and is retried from the tracked position once the database is back
    run = handle_sync(ledger.registry, TrainModel(model_id=model_id, dataset="d"), CTX)
    complete = CompleteTraining(
        model_id=model_id, run_id=run.details["run_id"], metrics={"accuracy": 0.9}
    )
    handle_sync(ledger.registry, complete, CTX)
    step_to_head(runner, ledger)
    assert CatalogueThatLosesTheDatabaseOnce.failed
    # and the model changes again
    deploy = DeployModel(model_id=model_id, environment="prod", model_version=1)
    handle_sync(ledger.registry, deploy, CTX)
    step_to_head(runner, ledger)
    runner.stop()
    # Then every change counts once (one version, not two): the tables equal a rebuild
    assert states(ledger)["catalogue"].status == "running"
    consistent(ledger, CatalogueProjection)


def test_kept_rows_are_bounded_and_belong_to_one_generation() -> None:
    kept = KeptRows(capacity=2)
    kept.put(1, {"a": 1, "b": 2})
    kept.put(1, {"c": 3})  # "a" was written longest ago
    assert list(kept.items) == ["b", "c"]
    # Taking removes: a batch that fails puts nothing back
    assert kept.take(1, ["b", "x"]) == {"b": 2}
    assert kept.take(1, ["b"]) == {}
    # Another generation's tables: nothing kept applies
    assert kept.take(2, ["c"]) == {}
    assert not kept.items
