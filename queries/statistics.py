"""Statistics of the catalogue, read from counters the catalogue projection keeps
(a handful of rows whatever the catalogue's size)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from queries.messages import ModelStatistics
from queries.reading import Snapshot
from read_model.tables import ALL, catalogue_tables


def model_statistics(snapshot: Snapshot, query: ModelStatistics) -> dict[str, Any]:
    t = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name)
    project, task = query.project or ALL, query.task or ALL
    counts = snapshot.conn.execute(
        select(t.counts.c.dimension, t.counts.c.key, t.counts.c.count)
        .where(t.counts.c.project == project, t.counts.c.task == task, t.counts.c.count != 0)
        .order_by(t.counts.c.dimension, t.counts.c.key)
    ).all()
    by: dict[str, dict[str, int]] = {}
    for dimension, key, count in counts:
        by.setdefault(dimension, {})[key] = count
    runs = by.get("runs", {})
    stats = snapshot.conn.execute(
        select(t.metric_stats)
        .where(t.metric_stats.c.project == project, t.metric_stats.c.task == task)
        .where(t.metric_stats.c.count > 0)
        .order_by(t.metric_stats.c.metric)
    ).all()
    return {
        "total_models": sum(by.get("status", {}).values()),
        "by_status": by.get("status", {}),
        "by_task": by.get("task", {}),
        "by_framework": by.get("framework", {}),
        "training_runs": {
            "started": runs.get("started", 0),
            "completed": runs.get("completed", 0),
            "failed": runs.get("failed", 0),
        },
        "active_deployments": by.get("deployments", {}),
        "metrics": {
            row.metric: {
                "count": row.count,
                "mean": row.total / row.count,
                "min": row.min_value,
                "max": row.max_value,
            }
            for row in stats
        },
    }
