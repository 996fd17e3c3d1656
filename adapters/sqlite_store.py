"""SQLite event store (the embedded default): eventsourcing's recorder plus
idempotency keys and history with positions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
)
from eventsourcing.utils import Environment, EnvType

from adapters.file_modes import owner_only_database
from adapters.group_commit import GroupCommitMixin
from commands.ports import IdempotencyRecord, StoredResponse

IDEMPOTENCY_TABLE = "idempotency_keys"


class LedgerSQLiteRecorder(GroupCommitMixin, SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
            "key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
            "model_id TEXT NOT NULL, model_version INTEGER NOT NULL, "
            "body TEXT NOT NULL, "
            "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        records: Sequence[IdempotencyRecord] = kwargs.get("idempotency", ())
        for r in records:
            c.execute(
                f"INSERT INTO {IDEMPOTENCY_TABLE} (key, fingerprint, model_id, "
                "model_version, body) VALUES (?, ?, ?, ?, ?)",
                (r.key, r.fingerprint, UUID(r.model_id).hex, r.model_version, json.dumps(r.body)),
            )
        return notification_ids

    def find_idempotency(self, key: str) -> StoredResponse | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT k.*, e.rowid AS position FROM {IDEMPOTENCY_TABLE} k "
                f"LEFT JOIN {self.events_table_name} e ON e.originator_id = k.model_id "
                "AND e.originator_version = k.model_version WHERE k.key = ?",
                (key,),
            )
            row = c.fetchone()
        if row is None:
            return None
        record = IdempotencyRecord(
            key=row["key"],
            fingerprint=row["fingerprint"],
            model_id=str(UUID(row["model_id"])),
            model_version=row["model_version"],
            body=json.loads(row["body"]),
        )
        return StoredResponse(record=record, position=row["position"])

    def select_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_version, topic, state FROM "
                f"{self.events_table_name} WHERE originator_id = ? "
                "ORDER BY originator_version",
                (originator_id.hex,),
            )
            return [
                (
                    row["rowid"],
                    StoredEvent(
                        originator_id=originator_id,
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=row["state"],
                    ),
                )
                for row in c.fetchall()
            ]

    def last_change(self, originator_id: UUID) -> tuple[int, int] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, rowid FROM {self.events_table_name} "
                "WHERE originator_id = ? ORDER BY originator_version DESC LIMIT 1",
                (originator_id.hex,),
            )
            row = c.fetchone()
        return None if row is None else (row["originator_version"], row["rowid"])

    def ping(self) -> None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1")


class LedgerSQLiteFactory(SQLiteFactory):
    application_recorder_class = LedgerSQLiteRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)  # connects lazily: the file is made the owner's first
        name = self.env.get(self.SQLITE_DBNAME) or ""
        if not SQLiteConnectionPool.detect_memory_mode(name) and not name.startswith("file:"):
            owner_only_database(Path(name))
