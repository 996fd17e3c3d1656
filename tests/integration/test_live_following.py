"""Live following on PostgreSQL rests on LISTEN/NOTIFY, and a notification can be
missed (committed before the LISTEN took hold, or lost): the follower must
still find what the log holds."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import Notification
from psycopg import sql

from commands.handlers import handle_sync
from commands.messages import CreateModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from projections.follow import RECHECK_SECONDS, SubscriptionFollower
from tests.support.ledgers import fresh_postgres_database, make_ledger


@pytest.fixture
def pg_ledger(postgres_server: str) -> Iterator[tuple[Ledger, str]]:
    url = fresh_postgres_database(postgres_server)
    ledger = make_ledger(url)
    yield ledger, url
    ledger.close()


def test_an_event_stored_without_a_notification_is_still_followed(
    pg_ledger: tuple[Ledger, str],
) -> None:
    # Given a model, and a follower subscribed after it
    ledger, url = pg_ledger
    handle_sync(
        ledger.registry, CreateModel(name="m", task="asr", framework="jax"), CommandContext()
    )
    recorder = ledger.registry.recorder
    follower = SubscriptionFollower(ledger.event_log)
    try:
        assert follower.next_batch(1, 100, timeout=0.2) == []
        # When another event is written by plain SQL, which sends no NOTIFY
        table = sql.Identifier(recorder.events_table_name)  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (originator_id, originator_version, topic, state) "
                    "SELECT gen_random_uuid(), originator_version, topic, state FROM {}"
                ).format(table, table)
            )
        # Then the follower finds it within a few quiet waits all the same
        found: list[Notification] = []
        deadline = time.monotonic() + 10 * RECHECK_SECONDS
        while not found and time.monotonic() < deadline:
            found = list(follower.next_batch(1, 100, timeout=5.0))
        assert [n.id for n in found] == [2]
    finally:
        follower.close()
