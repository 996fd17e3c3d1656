"""The timeline's checkpoints: the log cut into segments of about ``every`` events,
each with the span of its events' times, and the statistics counters as they
stood at the end of each closed segment (``queries.past_statistics`` reads them).

Where a segment ends depends on where batches ended, so two builds of the same
log can cut it differently: the checkpoints are an index into the stretches,
not part of what ``verify`` compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, func, insert, literal, select, update

from read_model.timeline import OPEN, RUN_COUNTS, STATISTICS_GROUPS, TimelineTables


def advance_segments(
    conn: Connection, tl: TimelineTables, begun: Sequence[dict[str, Any]], every: int
) -> None:
    """Take a batch's events into the open segment (each event began one model
    stretch, ``begun``); close it with a checkpoint once it holds ``every``."""
    if not begun:
        return
    segments = tl.segments
    times = [stretch["from_time"] for stretch in begun]
    batch = {
        "last_position": max(stretch["from_position"] for stretch in begun),
        "min_time": min(times),
        "max_time": max(times),
    }
    last = conn.execute(select(segments).order_by(segments.c.number.desc()).limit(1)).first()
    if last is None or last.closed:
        segment = {
            "number": 0 if last is None else last.number + 1,
            "events": len(begun),
            **batch,
            "high_time": max(batch["max_time"], last.high_time if last else ""),
            "closed": len(begun) >= every,
        }
        conn.execute(insert(segments).values(**segment))
    else:
        segment = {
            "number": last.number,
            "events": last.events + len(begun),
            "last_position": batch["last_position"],
            "min_time": min(last.min_time, batch["min_time"]),
            "max_time": max(last.max_time, batch["max_time"]),
            "high_time": max(last.high_time, batch["max_time"]),
        }
        segment["closed"] = segment["events"] >= every
        conn.execute(update(segments).where(segments.c.number == last.number).values(**segment))
    if segment["closed"]:
        write_checkpoint(conn, tl, segment["number"])


def write_checkpoint(conn: Connection, tl: TimelineTables, number: int) -> None:
    """The statistics counters of the stretches that hold now (the end of the segment)."""
    segment = literal(number, Integer)
    m = tl.models
    groups = [*(m.c[name] for name in STATISTICS_GROUPS), m.c.environments]
    conn.execute(
        insert(tl.checkpoint_models).from_select(
            ["segment", *STATISTICS_GROUPS, "environments", "models", *RUN_COUNTS],
            select(segment, *groups, func.count(), *(func.sum(m.c[n]) for n in RUN_COUNTS))
            .where(m.c.to_time == OPEN)
            .group_by(*groups),
        )
    )
    x = tl.metrics
    groups = [x.c.project, x.c.task, x.c.metric]
    conn.execute(
        insert(tl.checkpoint_metrics).from_select(
            ["segment", "project", "task", "metric", "count", "total", "min_value", "max_value"],
            select(
                segment,
                *groups,
                func.sum(x.c["count"]),
                func.sum(x.c.total),
                func.min(x.c.min_value),
                func.max(x.c.max_value),
            )
            .where(x.c.to_time == OPEN)
            .group_by(*groups),
        )
    )
