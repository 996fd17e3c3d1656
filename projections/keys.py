"""The keys projection: who holds which key, for listing (authentication reads the log)."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from sqlalchemy import Connection

from projections.base import Projection, event_time
from read_model.keys import KEYS_VERSION, keys_table
from write_model.api_key import ApiKey


class KeysProjection(Projection):
    name = "keys"
    version = KEYS_VERSION
    topics = (ApiKey.KeyIssued, ApiKey.KeyRevoked)

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.table = keys_table(generation)
        self.new_keys: list[dict[str, Any]] = []
        self.revocations: list[dict[str, Any]] = []

    @classmethod
    def create_tables(cls, conn: Connection, generation: int) -> None:
        keys_table(generation).create(conn, checkfirst=True)

    @classmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None:
        keys_table(generation).drop(conn, checkfirst=True)

    @classmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        return [keys_table(generation).name]

    @singledispatchmethod
    def process_event(self, event: Any, position: int) -> None:
        """Key events only."""

    @process_event.register
    def key_issued(self, event: ApiKey.KeyIssued, position: int) -> None:
        self.new_keys.append(
            {
                "key_id": str(event.originator_id),
                "name": event.name,
                "role": event.role,
                "projects": event.projects,
                "issued_at": event_time(event),
                "issued_by": event.actor,
                "revoked_at": None,
                "revoked_by": None,
                "position": position,
            }
        )

    @process_event.register
    def key_revoked(self, event: ApiKey.KeyRevoked, position: int) -> None:
        self.revocations.append(
            {
                "key_id": str(event.originator_id),
                "revoked_at": event_time(event),
                "revoked_by": event.actor,
                "position": position,
            }
        )

    def flush(self) -> None:
        # A batch may hold a key's issue and its revocation: insert first.
        if self.new_keys:
            self.conn.execute(self.table.insert(), self.new_keys)
        for row in self.revocations:
            self.conn.execute(
                self.table.update()
                .where(self.table.c.key_id == row["key_id"])
                .values(
                    revoked_at=row["revoked_at"],
                    revoked_by=row["revoked_by"],
                    position=row["position"],
                )
            )
        self.new_keys, self.revocations = [], []
