"""The catalogue's statistics, kept as deltas: a batch compares what each touched model
contributed before it with what it contributes after, and adds the difference to the
counters and metric distributions (at four roll-up levels: project x task, project,
task, all), so a statistics query reads a handful of rows at any catalogue size."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update

from projections.base import upsert
from read_model.exact import ZERO, exact_plus, minus, plus
from read_model.tables import ALL, CatalogueTables

Group = tuple[str, str]  # (project, task), either may be ALL
CountKey = tuple[str, str, str, str]  # project, task, dimension, key


@dataclass
class Contribution:
    """What one model adds to the statistics."""

    groups: tuple[Group, ...] = ()
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def roll_up(project: str, task: str) -> tuple[Group, ...]:
    return ((project, task), (project, ALL), (ALL, task), (ALL, ALL))


def contribution(row: dict[str, Any] | None, metrics: dict[str, dict[str, Any]]) -> Contribution:
    if row is None:
        return Contribution()
    counts: Counter[tuple[str, str]] = Counter(
        {
            ("status", row["status"]): 1,
            ("task", row["task"]): 1,
            ("framework", row["framework"]): 1,
        }
    )
    for run in row["training_runs"].values():
        counts[("runs", "started")] += 1
        if run["state"] != "running":
            counts[("runs", run["state"])] += 1
    for environment in row["deployments"]:
        counts[("deployments", environment)] += 1
    return Contribution(roll_up(row["project"], row["task"]), counts, dict(metrics))


def write_counts(
    conn: Connection,
    t: CatalogueTables,
    before: dict[str, Contribution],
    after: dict[str, Contribution],
) -> None:
    """Add each touched model's change of contribution to the counters."""
    deltas: Counter[CountKey] = Counter()
    for model_id, now in after.items():
        for sign, groups, counts in _count_changes(before.get(model_id), now):
            for (dimension, key), count in counts.items():
                if count:
                    for project, task in groups:
                        deltas[(project, task, dimension, key)] += sign * count
    changes = [(p, t, d, k, n) for (p, t, d, k), n in sorted(deltas.items()) if n]
    if not changes:
        return
    table = t.counts
    if conn.dialect.name == "postgresql":
        # One statement for the whole batch: executemany sends one per key.
        conn.execute(
            text(
                f"INSERT INTO {table.name} (project, task, dimension, key, count) "
                "SELECT * FROM unnest(CAST(:p AS text[]), CAST(:t AS text[]), "
                "CAST(:d AS text[]), CAST(:k AS text[]), CAST(:n AS bigint[])) "
                "ON CONFLICT (project, task, dimension, key) "
                f"DO UPDATE SET count = {table.name}.count + EXCLUDED.count"
            ),
            dict(zip("ptdkn", map(list, zip(*changes, strict=True)), strict=True)),
        )
    else:
        statement = upsert(conn, table)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=list(table.primary_key.columns),
                set_={"count": table.c.count + statement.excluded.count},
            ),
            [
                dict(zip(("project", "task", "dimension", "key", "count"), c, strict=True))
                for c in changes
            ],
        )
    if any(change[4] < 0 for change in changes):
        conn.execute(delete(table).where(table.c.count == 0))


def write_metric_stats(
    conn: Connection,
    t: CatalogueTables,
    before: dict[str, Contribution],
    after: dict[str, Contribution],
) -> None:
    """Add the metric values' changes to the distributions; recompute an extreme lost."""
    deltas: dict[tuple[str, str, str], dict[str, Any]] = {}
    stale: set[tuple[str, str, str]] = set()  # lost a contribution: min/max recomputed
    for model_id, now in after.items():
        then = before.get(model_id, Contribution())
        for project, task in then.groups:
            for name, m in then.metrics.items():
                d = deltas.setdefault((project, task, name), _no_change())
                d["count"] -= m["count"]
                d["total"] = minus(d["total"], m["total"])
                if (project, task) not in now.groups:  # (re-tasked)
                    stale.add((project, task, name))
        for project, task in now.groups:
            for name, m in now.metrics.items():
                d = deltas.setdefault((project, task, name), _no_change())
                d["count"] += m["count"]
                d["total"] = plus(d["total"], m["total"])
                d["min_value"] = min(d["min_value"], m["min_value"])
                d["max_value"] = max(d["max_value"], m["max_value"])
    changes = [
        {"project": p, "task": t, "metric": name, **d}
        for (p, t, name), d in sorted(deltas.items())
        if d["count"] or d["total"] or d["min_value"] != float("inf")
    ]
    if changes:
        _add_metric_stats(conn, t, changes)
    if stale:
        _recompute_extremes(conn, t, stale)


def _add_metric_stats(conn: Connection, t: CatalogueTables, changes: list[dict[str, Any]]) -> None:
    stats = t.metric_stats
    least, greatest = (
        (func.least, func.greatest) if conn.dialect.name == "postgresql" else (func.min, func.max)
    )
    statement = upsert(conn, stats)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(stats.primary_key.columns),
            set_={
                "count": stats.c.count + statement.excluded.count,
                "total": exact_plus(stats.c.total, statement.excluded.total),
                "min_value": least(stats.c.min_value, statement.excluded.min_value),
                "max_value": greatest(stats.c.max_value, statement.excluded.max_value),
            },
        ),
        changes,
    )


def _recompute_extremes(
    conn: Connection, t: CatalogueTables, stale: Iterable[tuple[str, str, str]]
) -> None:
    stats, metrics = t.metric_stats, t.metrics
    conn.execute(delete(stats).where(stats.c.count <= 0))
    for project, task, name in sorted(stale):
        where = [metrics.c.metric == name]
        if project != ALL:
            where.append(metrics.c.project == project)
        if task != ALL:
            where.append(metrics.c.task == task)
        low, high = conn.execute(
            select(func.min(metrics.c.min_value), func.max(metrics.c.max_value)).where(*where)
        ).one()
        if low is None:
            continue
        conn.execute(
            update(stats)
            .where(stats.c.project == project, stats.c.task == task, stats.c.metric == name)
            .values(min_value=low, max_value=high)
        )


def _count_changes(
    then: Contribution | None, now: Contribution
) -> list[tuple[int, tuple[Group, ...], Counter[tuple[str, str]]]]:
    """(sign, groups, counts) to add: just the difference while the model stays in
    its project and task (nearly always), else all out of the old and into the new."""
    if then is None:
        return [(1, now.groups, now.counts)]
    if then.groups == now.groups:
        change = Counter(now.counts)
        change.subtract(then.counts)
        return [(1, now.groups, change)]
    return [(-1, then.groups, then.counts), (1, now.groups, now.counts)]


def _no_change() -> dict[str, Any]:
    return {"count": 0, "total": ZERO, "min_value": float("inf"), "max_value": float("-inf")}
