"""Statistics as the registry stood at a time T, from the timeline's checkpoints:
the counters of the last checkpoint whose events were all recorded by T, plus the
stretches that began after it and held at T, minus the checkpoint's stretches
that ended by T. That reads a few thousand rows whatever the log's length,
where aggregating every stretch that held at T read half the timeline.

Counts and totals add and subtract; a minimum or maximum does not. A metric's
extreme in one (project, task) is recomputed from its stretches only when a
stretch that held it ended and nothing that began since matches it (the model
left that task): a model's own values only widen as it is trained.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
)

from queries.messages import ModelStatistics
from queries.reading import Snapshot
from queries.sources import held_at
from queries.statistics import MetricStatistics, scoped, statistics_answer
from read_model.timeline import RUN_COUNTS, TAG_SEPARATOR, TimelineTables, timeline_tables


@dataclass(frozen=True)
class Window:
    """Where the answer starts from: a checkpoint, and the events after it that
    may have been recorded by T (their times start at ``low``)."""

    segment: int  # -1: before the first checkpoint
    position: int  # the last event in the checkpoint
    low: str | None  # the earliest time of an event after it; None: no such event


def statistics_as_of(snapshot: Snapshot, query: ModelStatistics, as_of: str) -> dict[str, Any]:
    tl = timeline_tables(snapshot.generation)
    window = window_at(snapshot.conn, tl, as_of)
    by = _counts(snapshot.conn, tl, window, query, as_of)
    metrics = _metrics(snapshot.conn, tl, window, query, as_of)
    return statistics_answer(by, metrics)


def window_at(conn: Connection, tl: TimelineTables, as_of: str) -> Window:
    s = tl.segments
    checkpoint = conn.execute(
        select(s.c.number, s.c.last_position)
        .where(s.c.closed, s.c.high_time <= as_of)
        .order_by(s.c.number.desc())
        .limit(1)
    ).first()
    segment, position = (checkpoint.number, checkpoint.last_position) if checkpoint else (-1, 0)
    low = conn.execute(select(func.min(s.c.min_time)).where(s.c.number > segment)).scalar()
    return Window(segment, position, low if low is not None and low <= as_of else None)


def _counts(
    conn: Connection, tl: TimelineTables, window: Window, query: ModelStatistics, as_of: str
) -> dict[str, Counter[str]]:
    k, c = tl.checkpoint_models, tl.models
    dimensions = ("status", "task", "framework", "environments")
    parts: list[Select[Any]] = [
        select(*(k.c[d] for d in (*dimensions, "models", *RUN_COUNTS))).where(
            k.c.segment == window.segment, *scoped(k, query)
        )
    ]
    if window.low is not None:
        for sign, stretches in ((1, _began(tl, window, as_of)), (-1, _ended(tl, window, as_of))):
            parts.append(
                select(
                    *(c.c[d] for d in dimensions),
                    literal(sign).label("models"),
                    *((c.c[n] * sign).label(n) for n in RUN_COUNTS),
                ).where(stretches, *scoped(c, query))
            )
    held = union_all(*parts).subquery()
    models = func.sum(held.c.models)
    grouped = conn.execute(
        select(
            *(held.c[d] for d in dimensions),
            models,
            *(func.sum(held.c[n]) for n in RUN_COUNTS),
        )
        .group_by(*(held.c[d] for d in dimensions))
        .having(models != 0)
    ).all()
    by: dict[str, Counter[str]] = {d: Counter() for d in ("status", "task", "framework")}
    by["deployments"], by["runs"] = Counter(), Counter()
    for row in grouped:
        status, task, framework, listed, count, started, completed, failed = tuple(row)
        by["status"][status] += count
        by["task"][task] += count
        by["framework"][framework] += count
        by["deployments"].update({e: count for e in listed.split(TAG_SEPARATOR) if e})
        by["runs"].update(started=started, completed=completed, failed=failed)
    return by


def _began(tl: TimelineTables, window: Window, as_of: str) -> ColumnElement[bool]:
    """Model stretches begun after the checkpoint that held at T."""
    c = tl.models.c
    return and_(
        c.from_time >= window.low,
        c.from_time <= as_of,
        c.from_position > window.position,
        c.to_time > as_of,
    )


def _ended(tl: TimelineTables, window: Window, as_of: str) -> ColumnElement[bool]:
    """The checkpoint's model stretches that ended by T."""
    c = tl.models.c
    return and_(
        c.to_time >= window.low,
        c.to_time <= as_of,
        c.to_position > window.position,
        c.from_position <= window.position,
    )


CHECKPOINT, BEGAN, ENDED = 0, 1, 2  # where a metric row comes from


def _metrics(
    conn: Connection, tl: TimelineTables, window: Window, query: ModelStatistics, as_of: str
) -> dict[str, MetricStatistics]:
    k, x, e = tl.checkpoint_metrics, tl.metrics, tl.models
    values = ("count", "total", "min_value", "max_value")
    parts: list[Select[Any]] = [
        select(
            k.c.project, k.c.task, k.c.metric, literal(CHECKPOINT).label("part"),
            *(k.c[v] for v in values),
        ).where(k.c.segment == window.segment, *scoped(k, query))
    ]  # fmt: skip
    if window.low is not None:
        # A metric stretch begins and ends with one of its model's stretches: found
        # through those (the model stretches are indexed by time across metrics).
        after = and_(
            e.c.from_time >= window.low,
            e.c.from_time <= as_of,
            e.c.from_position > window.position,
        )
        began = x.join(e, and_(e.c.id == x.c.model_id, e.c.from_position == x.c.from_position))
        ended = x.join(e, and_(e.c.id == x.c.model_id, e.c.from_position == x.c.to_position))
        parts += [
            select(
                x.c.project, x.c.task, x.c.metric, literal(BEGAN).label("part"),
                *(x.c[v] for v in values),
            )
            .select_from(began)
            .where(after, x.c.to_time > as_of, *scoped(x, query)),
            select(
                x.c.project, x.c.task, x.c.metric, literal(ENDED).label("part"),
                -x.c["count"], -x.c.total, x.c.min_value, x.c.max_value,
            )
            .select_from(ended)
            .where(after, x.c.from_position <= window.position, *scoped(x, query)),
        ]  # fmt: skip
    rows = union_all(*parts).subquery()
    count = func.sum(rows.c["count"])

    def extreme(side: Any, column: str, part: int) -> Any:
        return side(case((rows.c.part == part, rows.c[column])))

    grouped = conn.execute(
        select(
            rows.c.project,
            rows.c.task,
            rows.c.metric,
            count,
            func.sum(rows.c.total),
            *(extreme(func.min, "min_value", part) for part in (CHECKPOINT, BEGAN, ENDED)),
            *(extreme(func.max, "max_value", part) for part in (CHECKPOINT, BEGAN, ENDED)),
        )
        .group_by(rows.c.project, rows.c.task, rows.c.metric)
        .having(count != 0)
    ).all()
    metrics: dict[str, MetricStatistics] = {}
    for project, task, metric, n, total, *extremes in grouped:
        low = _extreme(min, *extremes[:3])
        high = _extreme(max, *extremes[3:])
        if low is None or high is None:
            low, high = _held_extremes(conn, tl, project, task, metric, as_of)
        metrics[metric] = _merged(metrics.get(metric), MetricStatistics(n, total, low, high))
    return metrics


def _extreme(
    pick: Callable[..., Any], kept: float | None, began: float | None, ended: float | None
) -> float | None:
    """One (project, task, metric)'s min or max (``pick``) at T; None when a stretch
    that ended held the checkpoint's and none begun since reaches it."""

    def reaches(value: float | None) -> bool:
        return value is not None and kept is not None and pick(value, kept) == value

    if reaches(ended) and not reaches(began):
        return None
    return cast(float | None, pick((v for v in (kept, began) if v is not None), default=None))


def _held_extremes(
    conn: Connection, tl: TimelineTables, project: str, task: str, metric: str, as_of: str
) -> tuple[float, float]:
    x = tl.metrics
    low, high = conn.execute(
        select(func.min(x.c.min_value), func.max(x.c.max_value)).where(
            x.c.metric == metric, x.c.project == project, x.c.task == task, held_at(x, as_of)
        )
    ).one()
    return low, high


def _merged(a: MetricStatistics | None, b: MetricStatistics) -> MetricStatistics:
    if a is None:
        return b
    return MetricStatistics(
        a.count + b.count,
        a.total + b.total,
        min(a.min_value, b.min_value),
        max(a.max_value, b.max_value),
    )
