"""The versions projection: every trained model version with its metrics."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from sqlalchemy import Connection

from projections.base import Projection, event_time
from read_model.tables import VERSIONS_VERSION, versions_table
from write_model.model import AIModel


class VersionsProjection(Projection):
    name = "versions"
    version = VERSIONS_VERSION
    topics = (AIModel.ModelTrained,)

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.table = versions_table(generation)
        self.new: list[dict[str, Any]] = []

    @classmethod
    def create_tables(cls, conn: Connection, generation: int) -> None:
        versions_table(generation).create(conn, checkfirst=True)

    @classmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None:
        versions_table(generation).drop(conn, checkfirst=True)

    @classmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        return [versions_table(generation).name]

    @singledispatchmethod
    def process_event(self, event: AIModel.Event, position: int) -> None:
        """Only ModelTrained creates a version."""

    @process_event.register
    def trained(self, event: AIModel.ModelTrained, position: int) -> None:
        self.new.append(
            {
                "model_id": str(event.originator_id),
                "number": event.model_version,
                "run_id": event.run_id,
                "metrics": dict(event.metrics),
                "artifact_uri": event.artifact_uri,
                "output_model": event.output_model,
                "created_at": event_time(event),
                "created_by": event.actor,
                "position": position,
            }
        )

    def flush(self) -> None:
        if self.new:
            self.conn.execute(self.table.insert(), self.new)
