"""The event store adapters keep one contract on every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from commands.ports import IdempotencyRecord
from modelledger.bootstrap import Ledger
from tests.support.ledgers import fresh_postgres_database, make_ledger


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    ledger = make_ledger(url)
    yield ledger
    ledger.close()


def event(model: UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=model, originator_version=version, topic="t", state=b"{}")


def record(key: str, model: UUID, version: int) -> IdempotencyRecord:
    return IdempotencyRecord(key, "fingerprint", str(model), version, {"id": str(model)})


def test_one_key_twice_in_one_commit_is_a_conflict_and_nothing_is_appended(
    any_ledger: Ledger,
) -> None:
    model = uuid4()
    recorder = any_ledger.registry.store
    duplicate = [record("k", model, 1), record("k", model, 1)]
    with pytest.raises(IntegrityError):
        recorder.submit([event(model, 1)], duplicate).result()
    assert recorder.select_history(model) == []
    assert recorder.find_idempotency("k") is None


def test_submit_appends_in_order_and_remembers_the_key(any_ledger: Ledger) -> None:
    model = uuid4()
    recorder = any_ledger.registry.store
    positions = recorder.submit([event(model, 1), event(model, 2)], [record("k", model, 2)])
    first, second = positions.result()
    assert second == first + 1
    assert [p for p, _ in recorder.select_history(model)] == [first, second]
    stored = recorder.find_idempotency("k")
    assert stored is not None and stored.position == second


def test_a_version_that_exists_is_a_conflict_and_the_key_is_not_kept(any_ledger: Ledger) -> None:
    model = uuid4()
    recorder = any_ledger.registry.store
    recorder.submit([event(model, 1)], []).result()
    with pytest.raises(IntegrityError):
        recorder.submit([event(model, 1)], [record("k2", model, 1)]).result()
    assert recorder.find_idempotency("k2") is None
    assert len(recorder.select_history(model)) == 1


def open_at_once(url: str, count: int) -> tuple[list[Ledger], list[BaseException]]:
    together = threading.Barrier(count)
    opened: list[Ledger] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        together.wait()
        try:
            opened.append(make_ledger(url, db_pool_size=1))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for ledger in opened:
        ledger.close()
    return opened, errors


def test_processes_opening_a_fresh_postgres_store_at_once_all_come_up(postgres_server: str) -> None:
    for _ in range(5):
        # Given a fresh database, and four ledgers opened on it at the same moment
        # (as the workers of a first deployment do: each creates the event store's tables)
        opened, errors = open_at_once(fresh_postgres_database(postgres_server), 4)
        # Then none trips over another creating the tables
        assert errors == [] and len(opened) == 4
