"""The deployments projection: which version served each environment, from when
to when (positions and times); an open stretch (to_position NULL) is current."""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatchmethod
from typing import Any

from sqlalchemy import Connection, and_, bindparam, update

from projections.base import Projection, event_time, select_in
from read_model.tables import DEPLOYMENTS_VERSION, deployments_table
from write_model.model import AIModel


class DeploymentsProjection(Projection):
    name = "deployments"
    version = DEPLOYMENTS_VERSION
    topics = (AIModel.ModelDeployed, AIModel.ModelRolledBack, AIModel.ModelUndeployed)

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.table = deployments_table(generation)
        # (model id, environment) -> the stretch serving now, stored or new
        self.current: dict[tuple[str, str], dict[str, Any]] = {}
        self.new: list[dict[str, Any]] = []
        self.new_keys: set[tuple[str, str, int]] = set()
        self.ended: list[dict[str, Any]] = []

    @classmethod
    def create_tables(cls, conn: Connection, generation: int) -> None:
        deployments_table(generation).metadata.create_all(conn)

    @classmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None:
        deployments_table(generation).metadata.drop_all(conn)

    @classmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        return [deployments_table(generation).name]

    def prepare(self, events: Sequence[tuple[int, AIModel.Event]]) -> None:
        ids = {str(event.originator_id) for _, event in events}
        for row in select_in(self.conn, self.table, "model_id", ids):
            if row.to_position is None:
                self.current[(row.model_id, row.environment)] = dict(row._mapping)

    @singledispatchmethod
    def process_event(self, event: AIModel.Event, position: int) -> None:
        """Only deployments change this projection."""

    @process_event.register
    def deployed(self, event: AIModel.ModelDeployed, position: int) -> None:
        self._start(event, position, event.environment, event.model_version, event.endpoint_url)

    @process_event.register
    def rolled_back(self, event: AIModel.ModelRolledBack, position: int) -> None:
        self._start(event, position, event.environment, event.model_version, event.endpoint_url)

    @process_event.register
    def undeployed(self, event: AIModel.ModelUndeployed, position: int) -> None:
        self._end(event, position, event.environment, "undeployed")

    def _start(
        self,
        event: AIModel.ModelDeployed | AIModel.ModelRolledBack,
        position: int,
        environment: str,
        version: int,
        endpoint_url: str | None,
    ) -> None:
        action = "deployed" if isinstance(event, AIModel.ModelDeployed) else "rolled_back"
        self._end(event, position, environment, action)
        model_id = str(event.originator_id)
        row: dict[str, Any] = {
            "model_id": model_id,
            "environment": environment,
            "from_position": position,
            "model_version": version,
            "endpoint_url": endpoint_url,
            "action": action,
            "from_time": event_time(event),
            "deployed_by": event.actor,
            "to_position": None,
            "to_time": None,
            "ended_by": None,
        }
        self.current[(model_id, environment)] = row
        self.new.append(row)
        self.new_keys.add((model_id, environment, position))

    def _end(self, event: AIModel.Event, position: int, environment: str, why: str) -> None:
        row = self.current.pop((str(event.originator_id), environment), None)
        if row is None:
            return
        row.update(to_position=position, to_time=event_time(event), ended_by=why)
        if (row["model_id"], environment, row["from_position"]) not in self.new_keys:
            self.ended.append(row)  # stored earlier: updated at flush

    def flush(self) -> None:
        if self.new:
            self.conn.execute(self.table.insert(), self.new)
        if self.ended:
            t = self.table
            self.conn.execute(
                update(t)
                .where(
                    and_(
                        t.c.model_id == bindparam("key_model"),
                        t.c.environment == bindparam("key_environment"),
                        t.c.from_position == bindparam("key_from"),
                    )
                )
                .values(
                    to_position=bindparam("to_position"),
                    to_time=bindparam("to_time"),
                    ended_by=bindparam("ended_by"),
                ),
                [
                    {
                        **row,
                        "key_model": row["model_id"],
                        "key_environment": row["environment"],
                        "key_from": row["from_position"],
                    }
                    for row in self.ended
                ],
            )
