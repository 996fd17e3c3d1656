"""Statistics of the catalogue, read from counters the catalogue projection keeps
(a handful of rows whatever the catalogue's size)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    stats = snapshot.conn.execute(
        select(t.metric_stats)
        .where(t.metric_stats.c.project == project, t.metric_stats.c.task == task)
        .where(t.metric_stats.c.count > 0)
        .order_by(t.metric_stats.c.metric)
    ).all()
    metrics = {
        row.metric: MetricStatistics(**{k: row._mapping[k] for k in STATISTICS}) for row in stats
    }
    return statistics_answer(by, metrics)


STATISTICS = ("count", "total", "min_value", "max_value")


@dataclass(frozen=True)
class MetricStatistics:
    count: int
    total: float
    min_value: float
    max_value: float


def statistics_answer(
    by: Mapping[str, Mapping[str, int]], metrics: Mapping[str, MetricStatistics]
) -> dict[str, Any]:
    """The answer's shape from counts by dimension (status, task, framework,
    runs, deployments) and key, and each metric's counters."""
    runs = by.get("runs", {})
    return {
        "total_models": sum(by.get("status", {}).values()),
        "by_status": dict(sorted(by.get("status", {}).items())),
        "by_task": dict(sorted(by.get("task", {}).items())),
        "by_framework": dict(sorted(by.get("framework", {}).items())),
        "training_runs": {
            "started": runs.get("started", 0),
            "completed": runs.get("completed", 0),
            "failed": runs.get("failed", 0),
        },
        "active_deployments": dict(sorted(by.get("deployments", {}).items())),
        "metrics": {
            name: {
                "count": m.count,
                "mean": m.total / m.count,
                "min": m.min_value,
                "max": m.max_value,
            }
            for name, m in sorted(metrics.items())
            if m.count
        },
    }
