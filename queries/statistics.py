"""Statistics of the catalogue, read from counters the catalogue projection keeps
(a handful of rows whatever the catalogue's size)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from queries.directions import Directions, directions_now
from queries.messages import ModelStatistics
from queries.reading import Snapshot
from queries.visibility import Projects, projects_in_view
from read_model.exact import mean, plus
from read_model.tables import ALL, catalogue_tables


def model_statistics(
    snapshot: Snapshot, query: ModelStatistics, visible: Projects = None
) -> dict[str, Any]:
    """Counters of one project (or of all: the ALL rows), or summed over the
    projects a scoped caller may see (counts add up; so do exact totals, mins, maxes)."""
    t = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name)
    projects = projects_in_view(query.project, visible)
    keys = [ALL] if projects is None else sorted(projects)
    task = query.task or ALL
    counts = snapshot.conn.execute(
        select(t.counts.c.dimension, t.counts.c.key, t.counts.c.count).where(
            t.counts.c.project.in_(keys), t.counts.c.task == task, t.counts.c.count != 0
        )
    ).all()
    by: dict[str, dict[str, int]] = {}
    for dimension, key, count in counts:
        within = by.setdefault(dimension, {})
        within[key] = within.get(key, 0) + count
    stats = snapshot.conn.execute(
        select(t.metric_stats)
        .where(t.metric_stats.c.project.in_(keys), t.metric_stats.c.task == task)
        .where(t.metric_stats.c.count > 0)
    ).all()
    metrics: dict[str, MetricStatistics] = {}
    for row in stats:
        part = MetricStatistics(**{k: row._mapping[k] for k in STATISTICS})
        metrics[row.metric] = part.plus(metrics.get(row.metric))
    return statistics_answer(by, metrics, directions_now(snapshot.conn, snapshot.generation))


STATISTICS = ("count", "total", "min_value", "max_value")


@dataclass(frozen=True)
class MetricStatistics:
    count: int
    total: Decimal  # exact (read_model.exact)
    min_value: float
    max_value: float

    def plus(self, other: MetricStatistics | None) -> MetricStatistics:
        if other is None:
            return self
        return MetricStatistics(
            self.count + other.count,
            plus(self.total, other.total),
            min(self.min_value, other.min_value),
            max(self.max_value, other.max_value),
        )


def statistics_answer(
    by: Mapping[str, Mapping[str, int]],
    metrics: Mapping[str, MetricStatistics],
    directions: Directions,
) -> dict[str, Any]:
    """The answer's shape from counts by dimension (status, task, framework,
    runs, deployments) and key, and each metric's counters; each metric's best value
    is its lowest or its highest by its direction."""
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
                "mean": mean(m.total, m.count),
                "min": m.min_value,
                "max": m.max_value,
                "direction": directions.of(name).value,
                "best": m.min_value if directions.minimises(name) else m.max_value,
            }
            for name, m in sorted(metrics.items())
            if m.count
        },
    }
