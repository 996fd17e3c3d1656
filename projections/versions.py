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
    topics = (AIModel.ModelTrained, AIModel.VersionUpdated)

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.table = versions_table(generation)
        self.new: dict[tuple[str, int], dict[str, Any]] = {}  # by (model id, number)
        self.changed: list[tuple[str, int, dict[str, Any]]] = []  # of versions already stored

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
        """Only ModelTrained creates a version, and VersionUpdated changes one."""

    @process_event.register
    def trained(self, event: AIModel.ModelTrained, position: int) -> None:
        model_id = str(event.originator_id)
        self.new[model_id, event.model_version] = {
            "model_id": model_id,
            "number": event.model_version,
            "run_id": event.run_id,
            "metrics": dict(event.metrics),
            "artifact_uri": event.artifact_uri,
            "output_model": event.output_model,
            "source_version": event.source_version,
            "created_at": event_time(event),
            "created_by": event.actor,
            "position": position,
            "description": "",
            "tags": [],
        }

    @process_event.register
    def version_updated(self, event: AIModel.VersionUpdated, position: int) -> None:
        model_id, number = str(event.originator_id), event.model_version
        waiting = self.new.get((model_id, number))  # made in this batch, not yet inserted
        if waiting is not None:
            waiting.update(event.changes)
        else:
            self.changed.append((model_id, number, dict(event.changes)))

    def flush(self) -> None:
        if self.new:
            self.conn.execute(self.table.insert(), list(self.new.values()))
        c = self.table.c
        for model_id, number, changes in self.changed:
            where = (c.model_id == model_id) & (c.number == number)
            self.conn.execute(self.table.update().where(where).values(**changes))
