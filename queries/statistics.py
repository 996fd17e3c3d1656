"""Statistics of the catalogue, read from counters the catalogue projection keeps
(a handful of rows whatever the catalogue's size)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Table, func, select

from queries.messages import ModelStatistics
from queries.reading import Snapshot
from queries.sources import held_at
from read_model.tables import ALL, TAG_SEPARATOR, catalogue_tables, timeline_tables


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


def statistics_as_of(snapshot: Snapshot, query: ModelStatistics, as_of: str) -> dict[str, Any]:
    """The same answer as the registry stood at ``as_of``: aggregates over the
    timeline's stretches that held then (no counters reach into the past)."""
    t = timeline_tables(snapshot.generation)
    c, m = t.models, t.metrics
    scope = [held_at(c, as_of), *_scoped(c, query)]
    # One pass over the models that held then, grouped finely; summed up here.
    dimensions = (c.c.status, c.c.task, c.c.framework, c.c.environments)
    grouped = snapshot.conn.execute(
        select(
            *dimensions,
            func.count(),
            func.sum(c.c.runs_started),
            func.sum(c.c.runs_completed),
            func.sum(c.c.runs_failed),
        )
        .where(*scope)
        .group_by(*dimensions)
    ).all()
    by: dict[str, Counter[str]] = {d: Counter() for d in ("status", "task", "framework")}
    environments: Counter[str] = Counter()
    runs = [0, 0, 0]
    for status, task, framework, listed, count, *run_counts in grouped:
        by["status"][status] += count
        by["task"][task] += count
        by["framework"][framework] += count
        environments.update({e: count for e in listed.split(TAG_SEPARATOR) if e})
        runs = [total + int(n) for total, n in zip(runs, run_counts, strict=True)]
    stats = snapshot.conn.execute(
        select(
            m.c.metric,
            func.sum(m.c["count"]),
            func.sum(m.c.total),
            func.min(m.c.min_value),
            func.max(m.c.max_value),
        )
        .where(held_at(m, as_of), *_scoped(m, query))
        .group_by(m.c.metric)
        .order_by(m.c.metric)
    ).all()
    return {
        "total_models": sum(by["status"].values()),
        "by_status": dict(sorted(by["status"].items())),
        "by_task": dict(sorted(by["task"].items())),
        "by_framework": dict(sorted(by["framework"].items())),
        "training_runs": {"started": runs[0], "completed": runs[1], "failed": runs[2]},
        "active_deployments": dict(sorted(environments.items())),
        "metrics": {
            metric: {"count": count, "mean": total / count, "min": low, "max": high}
            for metric, count, total, low, high in stats
            if count
        },
    }


def _scoped(table: Table, query: ModelStatistics) -> list[Any]:
    where = []
    if query.project is not None:
        where.append(table.c.project == query.project)
    if query.task is not None:
        where.append(table.c.task == query.task)
    return where
