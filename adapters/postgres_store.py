"""PostgreSQL event store: eventsourcing's recorder plus idempotency keys and history."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
import psycopg_pool
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from adapters.group_commit import GroupCommitMixin
from commands.ports import IdempotencyRecord, StoredResponse

IDEMPOTENCY_TABLE = "idempotency_keys"
T = TypeVar("T")


def _reconnecting(method: Callable[..., T]) -> Callable[..., T]:
    """On a broken connection, test every pooled connection, then try once more.

    A database restart breaks all pooled connections at once; without a
    pre-ping (an extra round trip per query) each of them would otherwise
    fail one request before the pool noticed. A pool timeout (the database
    is down) is not retried: the caller answers 503 at once.
    """

    @functools.wraps(method)
    def reconnecting(self: LedgerPostgresRecorder, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except (InterfaceError, OperationalError) as error:
            if isinstance(error.__cause__, psycopg_pool.PoolTimeout):
                raise
            self.drop_broken_connections()
            return method(self, *args, **kwargs)

    return reconnecting


EVENT_STORE_DDL_LOCK = 0x6D6C6573  # any constant: the key of the event store's DDL lock
DDL_ATTEMPTS = 5


class LedgerPostgresRecorder(GroupCommitMixin, PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema or "public")
        self._idempotency = SQL("{}.{}").format(schema, Identifier(IDEMPOTENCY_TABLE))
        self._events = SQL("{}.{}").format(schema, Identifier(self.events_table_name))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "key text PRIMARY KEY, fingerprint text NOT NULL, "
                "model_id uuid NOT NULL, model_version bigint NOT NULL, "
                "body text NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now())"
            ).format(self._idempotency)
        )

    def create_table(self) -> None:
        # Workers starting together each run eventsourcing's CREATE TYPE / TABLE /
        # INDEX ... IF NOT EXISTS; two at once can trip over each other in
        # PostgreSQL's catalog ("tuple concurrently updated", a duplicate pg_type
        # row), which stopped a two-worker server at start. The statements are
        # idempotent: the loser tries again once the winner is done.
        for attempt in range(1, DDL_ATTEMPTS + 1):
            try:
                super().create_table()
                return
            except (IntegrityError, InternalError, ProgrammingError) as error:
                # eventsourcing creates its composite type outside any lock and only
                # forgives DuplicateObject; a concurrent CREATE TYPE can also fail as
                # "relation ... already exists" (a ProgrammingError).
                lost_race = not isinstance(error, ProgrammingError) or "already exists" in str(
                    error
                )
                if attempt == DDL_ATTEMPTS or not lost_race:
                    raise
                time.sleep(0.05 * attempt)

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        curs.execute(SQL("SELECT pg_advisory_xact_lock(%s)"), (EVENT_STORE_DDL_LOCK,))
        super()._create_table(curs)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        records: Sequence[IdempotencyRecord] = kwargs.get("idempotency", ())
        if records:
            # A nested pipeline block syncs on exit, so a duplicate key raises
            # IntegrityError here instead of aborting the pipeline (which
            # would surface later as an OperationalError, i.e. a false 503).
            with curs.connection.pipeline():
                self._insert_idempotency(curs, records)
        super()._insert_events(curs, stored_events, **kwargs)

    def _insert_idempotency(
        self, curs: Cursor[DictRow], records: Sequence[IdempotencyRecord]
    ) -> None:
        curs.executemany(
            SQL(
                "INSERT INTO {} (key, fingerprint, model_id, model_version, "
                "body) VALUES (%s, %s, %s, %s, %s)"
            ).format(self._idempotency),
            [
                (r.key, r.fingerprint, r.model_id, r.model_version, json.dumps(r.body))
                for r in records
            ],
        )

    def _insert_now(
        self, events: Sequence[StoredEvent], records: Sequence[Any]
    ) -> Sequence[int] | None:
        # Not eventsourcing's insert_events: it retries 10 times, each waiting
        # up to the pool timeout, about 50 s before a command could answer 503
        # while the database is down. One try, and one after reconnecting.
        try:
            return self._insert_once(events, records)
        except (InterfaceError, OperationalError) as error:
            if isinstance(error.__cause__, psycopg_pool.PoolTimeout):
                raise
            self.drop_broken_connections()
            try:
                return self._insert_once(events, records)
            except IntegrityError:
                # The first try may have committed and only its answer was lost.
                if (positions := self._positions_if_stored(events)) is None:
                    raise
                return positions

    def _insert_once(
        self, events: Sequence[StoredEvent], records: Sequence[Any]
    ) -> Sequence[int] | None:
        insert_once = PostgresApplicationRecorder.insert_events.__wrapped__
        return insert_once(self, events, idempotency=records)  # type: ignore[no-any-return]

    def _positions_if_stored(self, events: Sequence[StoredEvent]) -> list[int] | None:
        """Positions of exactly these events (same bytes) if all are stored, else None."""
        positions = []
        for event in events:
            stored = {
                stored.originator_version: (position, stored.state)
                for position, stored in self.select_history(cast(UUID, event.originator_id))
            }
            found = stored.get(event.originator_version)
            if found is None or found[1] != event.state:
                return None
            positions.append(found[0])
        return positions

    def drop_broken_connections(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.datastore.pool.check()

    select_events = _reconnecting(PostgresApplicationRecorder.select_events)
    select_notifications = _reconnecting(PostgresApplicationRecorder.select_notifications)

    @_reconnecting
    def find_idempotency(self, key: str) -> StoredResponse | None:
        query = SQL(
            "SELECT k.*, e.notification_id FROM {} k LEFT JOIN {} e "
            "ON e.originator_id = k.model_id AND e.originator_version = k.model_version "
            "WHERE k.key = %s"
        ).format(self._idempotency, self._events)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (key,))
            row = curs.fetchone()
        if row is None:
            return None
        record = IdempotencyRecord(
            key=row["key"],
            fingerprint=row["fingerprint"],
            model_id=str(row["model_id"]),
            model_version=row["model_version"],
            body=json.loads(row["body"]),
        )
        return StoredResponse(record=record, position=row["notification_id"])

    @_reconnecting
    def select_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]:
        query = SQL(
            "SELECT notification_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = %s ORDER BY originator_version"
        ).format(self._events)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (originator_id,), prepare=True)
            return [
                (
                    row["notification_id"],
                    StoredEvent(
                        originator_id=originator_id,
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    ),
                )
                for row in curs.fetchall()
            ]

    @_reconnecting
    def last_change(self, originator_id: UUID) -> tuple[int, int] | None:
        query = SQL(
            "SELECT originator_version, notification_id FROM {} "
            "WHERE originator_id = %s ORDER BY originator_version DESC LIMIT 1"
        ).format(self._events)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (originator_id,), prepare=True)
            row = curs.fetchone()
        return None if row is None else (row["originator_version"], row["notification_id"])

    @_reconnecting
    def ping(self) -> None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SELECT 1")


class LedgerPostgresFactory(PostgresFactory):
    application_recorder_class = LedgerPostgresRecorder
