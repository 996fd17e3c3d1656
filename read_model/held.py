"""What held at a time T, counted from the timeline: the statistics counters of a
checkpoint, plus the stretches that began after it and held at T, minus the
checkpoint's stretches that ended by T. Statistics as of T read it
(``queries.past_statistics``), and so does the timeline when it writes the next
checkpoint (T = now): either way a few thousand rows, whatever the log's length.

Counts and totals add and subtract (totals exactly, ``read_model.exact``: an answer
does not depend on where checkpoints fell); a minimum or maximum does not. A
metric's extreme in one (project, task) is recomputed from its stretches only when
a stretch that held it ended and nothing that began since reaches it (the model
left that task): a model's own values only widen as it is trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    Table,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
)

from read_model.exact import exact_negative, exact_sum
from read_model.timeline import RUN_COUNTS, STATISTICS_GROUPS, TimelineTables


@dataclass(frozen=True)
class Window:
    """Where counting starts: a checkpoint, and the events after it that may have
    been recorded by T (their times start at ``low``)."""

    segment: int  # -1: before the first checkpoint
    position: int  # the last event in the checkpoint
    low: str | None  # the earliest time of an event after it; None: no such event


@dataclass(frozen=True)
class Scope:
    """The projects and task asked about; None: every one."""

    projects: frozenset[str] | None = None
    task: str | None = None

    def of(self, table: Table) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.projects is not None:
            where.append(table.c.project.in_(sorted(self.projects)))
        if self.task is not None:
            where.append(table.c.task == self.task)
        return where


@dataclass(frozen=True)
class HeldMetric:
    project: str
    task: str
    metric: str
    count: int
    total: Decimal  # exact (read_model.exact)
    min_value: float
    max_value: float


def window_at(conn: Connection, tl: TimelineTables, as_of: str) -> Window:
    """The last checkpoint whose events were all recorded by ``as_of``."""
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


# -- models -------------------------------------------------------------------------------

MODEL_GROUPS = (*STATISTICS_GROUPS, "environments")


def held_models(
    conn: Connection, tl: TimelineTables, window: Window, as_of: str, scope: Scope
) -> list[tuple[Any, ...]]:
    """(project, task, status, framework, environments, models, *RUN_COUNTS) of the
    models that held at ``as_of``, one row per group with any."""
    k, c = tl.checkpoint_models, tl.models
    parts: list[Select[Any]] = [
        select(*(k.c[name] for name in (*MODEL_GROUPS, "models", *RUN_COUNTS))).where(
            k.c.segment == window.segment, *scope.of(k)
        )
    ]
    if window.low is not None:
        for sign, stretches in ((1, _began(tl, window, as_of)), (-1, _ended(tl, window, as_of))):
            parts.append(
                select(
                    *(c.c[name] for name in MODEL_GROUPS),
                    literal(sign).label("models"),
                    *((c.c[n] * sign).label(n) for n in RUN_COUNTS),
                ).where(stretches, *scope.of(c))
            )
    held = union_all(*parts).subquery()
    models = func.sum(held.c.models)
    groups = [held.c[name] for name in MODEL_GROUPS]
    rows = conn.execute(
        select(*groups, models, *(func.sum(held.c[n]) for n in RUN_COUNTS))
        .group_by(*groups)
        .having(models != 0)
    ).all()
    return [tuple(row) for row in rows]


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


# -- metrics ------------------------------------------------------------------------------

CHECKPOINT, BEGAN, ENDED = 0, 1, 2  # where a metric row comes from
VALUES = ("count", "total", "min_value", "max_value")


def held_metrics(
    conn: Connection, tl: TimelineTables, window: Window, as_of: str, scope: Scope
) -> list[HeldMetric]:
    """Each (project, task, metric)'s counters over the metric stretches held at T."""
    rows = _metric_parts(tl, window, as_of, scope).subquery()
    count = func.sum(rows.c["count"])

    def extreme(side: Any, column: str, part: int) -> Any:
        return side(case((rows.c.part == part, rows.c[column])))

    grouped = conn.execute(
        select(
            rows.c.project,
            rows.c.task,
            rows.c.metric,
            count,
            exact_sum(rows.c.total),
            *(extreme(func.min, "min_value", part) for part in (CHECKPOINT, BEGAN, ENDED)),
            *(extreme(func.max, "max_value", part) for part in (CHECKPOINT, BEGAN, ENDED)),
        )
        .group_by(rows.c.project, rows.c.task, rows.c.metric)
        .having(count != 0)
    ).all()
    held = []
    for project, task, metric, n, total, *extremes in grouped:
        low = _extreme(min, *extremes[:3])
        high = _extreme(max, *extremes[3:])
        if low is None or high is None:
            low, high = _held_extremes(conn, tl, project, task, metric, as_of)
        # (PostgreSQL sums a bigint column into a numeric)
        held.append(HeldMetric(project, task, metric, int(n), total, low, high))
    return held


def _metric_parts(
    tl: TimelineTables, window: Window, as_of: str, scope: Scope
) -> CompoundSelect[Any]:
    k, x, e = tl.checkpoint_metrics, tl.metrics, tl.models
    keys = (x.c.project, x.c.task, x.c.metric)
    parts: list[Select[Any]] = [
        select(
            k.c.project, k.c.task, k.c.metric, literal(CHECKPOINT).label("part"),
            *(k.c[v] for v in VALUES),
        ).where(k.c.segment == window.segment, *scope.of(k))
    ]  # fmt: skip
    if window.low is None:
        return union_all(*parts)
    # A metric stretch begins and ends with one of its model's stretches: found
    # through those (the model stretches are indexed by time across metrics).
    after = and_(
        e.c.from_time >= window.low,
        e.c.from_time <= as_of,
        e.c.from_position > window.position,
    )
    began = x.join(e, and_(e.c.id == x.c.model_id, e.c.from_position == x.c.from_position))
    ended = x.join(e, and_(e.c.id == x.c.model_id, e.c.from_position == x.c.to_position))
    return union_all(
        *parts,
        select(*keys, literal(BEGAN).label("part"), *(x.c[v] for v in VALUES))
        .select_from(began)
        .where(after, x.c.to_time > as_of, *scope.of(x)),
        select(
            *keys,
            literal(ENDED).label("part"),
            -x.c["count"],
            exact_negative(x.c.total),
            x.c.min_value,
            x.c.max_value,
        )
        .select_from(ended)
        .where(after, x.c.from_position <= window.position, *scope.of(x)),
    )


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
            x.c.metric == metric,
            x.c.project == project,
            x.c.task == task,
            x.c.from_time <= as_of,
            x.c.to_time > as_of,
        )
    ).one()
    return low, high
