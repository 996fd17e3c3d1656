"""Statistics as of T read a checkpoint and the stretches that began or ended
after it: stories of the cases that arithmetic alone gets wrong, on both stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from commands.handlers import handle_sync
from commands.messages import CompleteTraining, CreateModel, TrainModel, UpdateModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from projections.timeline import TimelineProjection
from projections.worker import ensure_projections
from queries.messages import ModelStatistics
from queries.past_statistics import statistics_as_of
from queries.reading import reading
from read_model.tables import TIMELINE_VERSION
from read_model.timeline import timeline_tables
from tests.support.ledgers import make_ledger
from tests.support.running import run_projection
from write_model.values import instant

CTX = CommandContext(actor="story")


class TimelineEveryEvent(TimelineProjection):
    checkpoint_every = 1


@pytest.fixture
def ledger(new_store: Callable[[], str]) -> Iterator[Ledger]:
    ledger = make_ledger(new_store(), db_pool_size=2)
    ensure_projections(ledger.write_engine)
    yield ledger
    ledger.close()


def trained(ledger: Ledger, name: str, task: str, accuracy: float) -> UUID:
    create = CreateModel(name=name, project="vision", task=task, framework="torch")
    model_id = UUID(handle_sync(ledger.registry, create, CTX).id)
    train = TrainModel(model_id=model_id, dataset="s3://data")
    run_id = handle_sync(ledger.registry, train, CTX).details["run_id"]
    complete = CompleteTraining(model_id=model_id, run_id=run_id, metrics={"accuracy": accuracy})
    handle_sync(ledger.registry, complete, CTX)
    return model_id


def now() -> str:
    return instant(datetime.now().astimezone())


def accuracy_as_of(ledger: Ledger, as_of: str, **scope: Any) -> dict[str, Any]:
    with reading(ledger.read_engine, "timeline", TIMELINE_VERSION) as snapshot:
        answer = statistics_as_of(snapshot, ModelStatistics(**scope), as_of)
    return dict(answer["metrics"].get("accuracy", {}))


def checkpoints(ledger: Ledger) -> int:
    with reading(ledger.read_engine, "timeline", TIMELINE_VERSION) as snapshot:
        segments = timeline_tables(snapshot.generation).segments
        return snapshot.conn.execute(select(func.count()).where(segments.c.closed)).scalar_one()


def test_a_model_that_left_the_task_takes_its_best_value_with_it(ledger: Ledger) -> None:
    # Given two classification models, the better one at 0.9, checkpointed
    best = trained(ledger, "best", "classification", 0.9)
    trained(ledger, "second", "classification", 0.8)
    run_projection(ledger, TimelineEveryEvent, batch_size=100)
    before = now()
    # When the better one is re-tasked (its stretch ends; nothing in the task replaces it)
    handle_sync(ledger.registry, UpdateModel(model_id=best, task="detection"), CTX)
    run_projection(ledger, TimelineProjection, batch_size=100)
    after = now()
    # Then classification's statistics lose its value from then on, and keep it before
    assert checkpoints(ledger) >= 1
    then = accuracy_as_of(ledger, before, task="classification")
    assert (then["count"], then["max"], then["min"]) == (2, 0.9, 0.8)
    later = accuracy_as_of(ledger, after, task="classification")
    assert (later["count"], later["max"], later["min"]) == (1, 0.8, 0.8)
    # and the registry as a whole still counts it, in its new task
    whole = accuracy_as_of(ledger, after)
    assert (whole["count"], whole["max"], whole["min"]) == (2, 0.9, 0.8)


def test_a_model_trained_again_since_the_checkpoint_counts_once_with_its_new_values(
    ledger: Ledger,
) -> None:
    # Given a model at 0.7 and another at 0.6, checkpointed
    model = trained(ledger, "one", "classification", 0.7)
    trained(ledger, "two", "classification", 0.6)
    run_projection(ledger, TimelineEveryEvent, batch_size=100)
    before = now()
    # When the first is trained again to 0.95, after the last checkpoint
    run_id = handle_sync(
        ledger.registry, TrainModel(model_id=model, dataset="s3://more"), CTX
    ).details["run_id"]
    handle_sync(
        ledger.registry,
        CompleteTraining(model_id=model, run_id=run_id, metrics={"accuracy": 0.95}),
        CTX,
    )
    run_projection(ledger, TimelineProjection, batch_size=100)
    after = now()
    # Then as of now it counts once, with both its values; as of before, as it was
    later = accuracy_as_of(ledger, after)
    assert (later["count"], later["max"], later["min"]) == (3, 0.95, 0.6)
    assert later["mean"] == pytest.approx((0.7 + 0.95 + 0.6) / 3)
    then = accuracy_as_of(ledger, before)
    assert (then["count"], then["max"], then["min"]) == (2, 0.7, 0.6)
