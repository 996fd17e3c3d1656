"""Top-performing models by a metric: each model ranked by its best trained version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from queries.directions import directions_for
from queries.messages import TopPerforming
from queries.reading import Snapshot
from queries.sources import source_for
from queries.visibility import Projects, projects_in_view


def top_performing(
    snapshot: Snapshot, query: TopPerforming, as_of: str | None = None, visible: Projects = None
) -> dict[str, Any]:
    """From the catalogue now, or (``as_of``) the timeline as it stood then."""
    source = source_for(snapshot, as_of)
    m, c = source.metrics, source.models
    direction = directions_for(snapshot, as_of).of(query.metric)
    ascending = query.order == "asc" if query.order else direction == "minimize"
    value, version = (
        (m.c.min_value, m.c.min_version) if ascending else (m.c.max_value, m.c.max_version)
    )
    statement = (
        select(c.c.id, c.c.name, c.c.project, c.c.task, version, value)
        .join(c, and_(c.c.id == m.c.model_id, source.valid_models))
        .where(m.c.metric == query.metric, m.c.archived.is_(False), source.valid_metrics)
    )
    if query.task is not None:
        statement = statement.where(m.c.task == query.task)
    projects = projects_in_view(query.project, visible)
    if projects is not None:
        statement = statement.where(m.c.project.in_(sorted(projects)))
    ranked = value.asc() if ascending else value.desc()
    rows = snapshot.conn.execute(statement.order_by(ranked, c.c.name, c.c.id).limit(query.limit))
    return {
        "metric": query.metric,
        "direction": direction.value,
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
