"""The group committer under the ways callers and connections misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from adapters.group_commit import _Pending
from commands.errors import VersionMismatch
from commands.handlers import handle, handle_sync
from commands.messages import CompleteTraining, CreateModel, TrainModel, UpdateModel
from commands.registry import CommandContext, IdempotencyRequest
from modelledger.bootstrap import Ledger
from queries.models import model_history
from queries.ports import EventLog
from tests.support.ledgers import make_ledger
from write_model.model import AIModel
from write_model.values import EventMetadata


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture
def sqlite_ledger(sqlite_url: str) -> Iterator[Ledger]:
    ledger = make_ledger(sqlite_url)
    yield ledger
    ledger.close()


def create(ledger: Ledger, name: str = "m", **fields: Any) -> UUID:
    command = CreateModel(name=name, task="t", framework="f", **fields)
    return UUID(handle_sync(ledger.registry, command, CommandContext()).id)


def test_a_cancelled_command_does_not_stop_later_commands(sqlite_ledger: Ledger) -> None:
    async def story() -> None:
        registry = sqlite_ledger.registry
        tasks = [
            asyncio.create_task(
                handle(
                    registry, CreateModel(name=f"m{i}", task="t", framework="f"), CommandContext()
                )
            )
            for i in range(20)
        ]
        await asyncio.sleep(0)
        tasks[5].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        later = handle(
            registry, CreateModel(name="later", task="t", framework="f"), CommandContext()
        )
        assert (await asyncio.wait_for(later, timeout=10)).version == 1

    asyncio.run(story())


def test_a_no_op_on_a_stale_cached_model_is_checked_against_the_log(sqlite_url: str) -> None:
    replica_a, replica_b = make_ledger(sqlite_url), make_ledger(sqlite_url)
    try:
        model_id = create(replica_a, description="x")  # A caches version 1
        handle_sync(
            replica_b.registry, UpdateModel(model_id=model_id, description="y"), CommandContext()
        )
        # A's cached copy says description is already "x": a no-op, if A trusted its cache
        with pytest.raises(VersionMismatch):
            handle_sync(
                replica_a.registry,
                UpdateModel(model_id=model_id, description="x"),
                CommandContext(expected_version=1),
            )
        result = handle_sync(
            replica_a.registry, UpdateModel(model_id=model_id, description="x"), CommandContext()
        )
        assert result.version == 3
    finally:
        replica_a.close()
        replica_b.close()


def test_two_copies_of_a_keyed_command_in_flight_get_the_same_answer(
    sqlite_ledger: Ledger,
) -> None:
    registry = sqlite_ledger.registry
    model_id = create(sqlite_ledger)
    run_id = handle_sync(
        registry, TrainModel(model_id=model_id, dataset="d"), CommandContext()
    ).details["run_id"]
    complete = CompleteTraining(model_id=model_id, run_id=run_id, metrics={"accuracy": 0.9})
    ctx = CommandContext(idempotency=IdempotencyRequest("same", "fingerprint"))

    async def both() -> tuple[Any, Any]:
        return await asyncio.gather(
            handle(registry, complete, ctx), handle(registry, complete, ctx)
        )

    first, second = asyncio.run(both())
    assert (first.version, first.position) == (second.version, second.position)
    assert len(model_history(EventLog.of(registry), model_id)) == 3


def test_commands_after_close_fail_at_once(sqlite_url: str) -> None:
    ledger = make_ledger(sqlite_url)
    model_id = create(ledger)
    ledger.close()
    future = ledger.registry.store.submit([], [])
    assert future.exception(timeout=1) is not None
    assert model_id


def test_without_group_commit_commands_still_commit(sqlite_url: str) -> None:
    ledger = make_ledger(sqlite_url, group_commit=False)
    try:
        ids = [create(ledger, f"m{i}") for i in range(3)]
        assert len(set(ids)) == 3
    finally:
        ledger.close()


def test_a_commit_whose_answer_was_lost_is_not_appended_twice(postgres_ledger: Ledger) -> None:
    """The database committed, then the connection broke before it said so."""
    recorder: Any = postgres_ledger.registry.recorder
    model_id = create(postgres_ledger)
    insert_once = recorder._insert_once
    calls = {"n": 0}

    def commit_then_lose_the_answer(events: Any, records: Any) -> Any:
        calls["n"] += 1
        positions = insert_once(events, records)
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return positions

    recorder._insert_once = commit_then_lose_the_answer
    result = handle_sync(
        postgres_ledger.registry, TrainModel(model_id=model_id, dataset="d"), CommandContext()
    )
    kinds = [item["type"] for item in model_history(postgres_ledger.event_log, model_id)]
    assert kinds == ["ModelCreated", "TrainingStarted"]
    assert result.version == 2


@pytest.fixture
def postgres_ledger(postgres_server: str) -> Iterator[Ledger]:
    from tests.support.ledgers import fresh_postgres_database

    ledger = make_ledger(fresh_postgres_database(postgres_server))
    yield ledger
    ledger.close()


def test_a_conflict_in_a_batch_fails_that_command_alone_in_few_transactions(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder: Any = sqlite_ledger.registry.recorder
    to_stored = sqlite_ledger.registry.mapper.to_stored_event
    meta = EventMetadata("test", "c", "test")
    # Given a model already in the log
    taken = AIModel.register(name="taken", project="p", task="t", framework="f", tags=[], meta=meta)
    taken_events = [to_stored(e) for e in taken.collect_events()]
    recorder.insert_events(taken_events)
    # When a batch of 32 commands arrives, one of which appends that model's event again
    batch = [
        _Pending([to_stored(e) for e in AIModel.register(
            name=f"m{i}", project="p", task="t", framework="f", tags=[], meta=meta
        ).collect_events()], [])
        for i in range(31)
    ]  # fmt: skip
    batch.insert(17, _Pending(taken_events, []))
    transactions: list[int] = []
    insert_batch = recorder._insert_batch

    def counted(pending: list[_Pending]) -> Any:
        transactions.append(len(pending))
        return insert_batch(pending)

    monkeypatch.setattr(recorder, "_insert_batch", counted)
    recorder._commit(batch)
    # Then only that one fails, and the batch took about 2 * log2(32) transactions, not 32
    failed = [p for p in batch if p.result.exception() is not None]
    assert failed == [batch[17]]
    assert isinstance(batch[17].result.exception(), IntegrityError)
    assert all(len(p.result.result()) == 1 for p in batch if p is not batch[17])
    assert len(transactions) <= 2 * 5 + 1, transactions
