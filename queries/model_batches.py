"""Many models' parts at once: what GraphQL's DataLoaders ask for a page of models (their
whole resources, their deployments), one statement per batch whatever its size.

A batch is read at a position at least as far as every model in it was seen (its
``at_least``): a model's parts never show less than the model they belong to. Each part
has the shape of the REST answer for one model (the same views, the same encoding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import select

from queries.catalogue import answer_columns, catalogue_view
from queries.deployments import deployments_view, stretch_view
from queries.model_reader import ModelReader
from queries.visibility import Projects
from read_model.encoding import json_bytes
from read_model.tables import (
    CATALOGUE_VERSION,
    DEPLOYMENTS_VERSION,
    catalogue_tables,
    deployments_table,
)


def _as_sent(value: Any) -> Any:
    """The value as a REST answer carries it (encoded once, as the readers encode)."""
    return orjson.loads(json_bytes(value))


class ModelBatches:
    def __init__(self, models: ModelReader) -> None:
        self.models = models
        self.tables = models.tables

    def resources(
        self, model_ids: Sequence[UUID], visible: Projects, at_least: int
    ) -> tuple[dict[UUID, dict[str, Any]], int]:
        """The catalogue's resource of each model it holds (and the caller may see), as
        ``GET /api/v1/models/{id}`` answers it, and the position they reflect."""
        with self.tables.reading("catalogue", CATALOGUE_VERSION, at_least) as snapshot:
            models = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name).models
            ids = sorted({str(model_id) for model_id in model_ids})
            statement = select(*answer_columns(models)).where(models.c.id.in_(ids))
            rows = snapshot.conn.execute(statement).all()
            directions = self.models.directions_at(
                snapshot.conn, snapshot.generation, snapshot.position
            )
            found = {
                UUID(row.id): _as_sent(catalogue_view(row, directions))
                for row in rows
                if visible is None or row.project in visible
            }
            return found, snapshot.position

    def deployments(
        self,
        model_ids: Sequence[UUID],
        at_least: int,
        as_of: str | None = None,
    ) -> tuple[dict[UUID, dict[str, Any]], int]:
        """Each model's deployments (now, or at ``as_of``) as
        ``GET /api/v1/models/{id}/deployments`` answers them (``current`` and ``history``),
        and the position they reflect. The callers' models are already ones they may see."""
        with self.tables.reading("deployments", DEPLOYMENTS_VERSION, at_least) as snapshot:
            table = deployments_table(snapshot.generation)
            ids = sorted({str(model_id) for model_id in model_ids})
            statement = select(table).where(table.c.model_id.in_(ids))
            if as_of is not None:
                statement = statement.where(table.c.from_time <= as_of)
            order = (table.c.model_id, table.c.environment, table.c.from_position)
            rows = snapshot.conn.execute(statement.order_by(*order)).all()
            position = snapshot.position
        histories: dict[UUID, list[dict[str, Any]]] = {UUID(i): [] for i in ids}
        for row in rows:
            histories[UUID(row.model_id)].append(stretch_view(row, as_of))
        found = {
            model_id: _as_sent(deployments_view(history)) for model_id, history in histories.items()
        }
        return found, position
