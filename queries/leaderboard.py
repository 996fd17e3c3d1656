"""Top-performing models by a metric: each model ranked by its best trained version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from queries.messages import TopPerforming
from queries.reading import Snapshot
from read_model.tables import catalogue_tables
from write_model.values import is_lower_better


def top_performing(snapshot: Snapshot, query: TopPerforming) -> dict[str, Any]:
    t = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name)
    m, c = t.metrics, t.models
    ascending = query.order == "asc" if query.order else is_lower_better(query.metric)
    value, version = (
        (m.c.min_value, m.c.min_version) if ascending else (m.c.max_value, m.c.max_version)
    )
    statement = (
        select(c.c.id, c.c.name, c.c.project, c.c.task, version, value)
        .join(c, c.c.id == m.c.model_id)
        .where(m.c.metric == query.metric, m.c.archived.is_(False))
    )
    if query.task is not None:
        statement = statement.where(m.c.task == query.task)
    if query.project is not None:
        statement = statement.where(m.c.project == query.project)
    ranked = value.asc() if ascending else value.desc()
    rows = snapshot.conn.execute(statement.order_by(ranked, c.c.name, c.c.id).limit(query.limit))
    return {
        "metric": query.metric,
        "order": "asc" if ascending else "desc",
        "items": [
            {
                "rank": rank,
                "id": row.id,
                "name": row.name,
                "project": row.project,
                "task": row.task,
                "model_version": row[4],
                "value": row[5],
            }
            for rank, row in enumerate(rows, start=1)
        ],
    }
