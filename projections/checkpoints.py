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

from sqlalchemy import Connection, insert, select, update

from projections.base import insert_rows
from read_model.held import MODEL_GROUPS, Scope, Window, held_metrics, held_models
from read_model.timeline import NOW, RUN_COUNTS, TimelineTables


def advance_segments(
    conn: Connection, tl: TimelineTables, begun: Sequence[dict[str, Any]], every: int
) -> None:
    """Take a batch's events into the open segment (each event began one model
    stretch, ``begun``); close it with a checkpoint once it holds ``every``."""
    if not begun:
        return
    segments = tl.segments
    times = [stretch["from_time"] for stretch in begun]
    last = conn.execute(select(segments).order_by(segments.c.number.desc()).limit(1)).first()
    opening = last is None or last.closed
    if last is None or last.closed:
        number, events = (0 if last is None else last.number + 1), 0
        low, high = min(times), max(times)
    else:
        number, events, low, high = last.number, last.events, last.min_time, last.max_time
    segment = {
        "number": number,
        "events": events + len(begun),
        "last_position": max(stretch["from_position"] for stretch in begun),
        "min_time": min(low, *times),
        "max_time": max(high, *times),
        "high_time": max(last.high_time if last else "", *times),
    }
    segment["closed"] = segment["events"] >= every
    if opening:
        conn.execute(insert(segments).values(**segment))
    else:
        conn.execute(update(segments).where(segments.c.number == number).values(**segment))
    if segment["closed"]:
        write_checkpoint(conn, tl, segment)


def write_checkpoint(conn: Connection, tl: TimelineTables, segment: dict[str, Any]) -> None:
    """The statistics counters now (at the segment's end): the previous checkpoint's
    and the segment's stretches, so the cost is the segment's, not the registry's."""
    number = segment["number"]
    previous = conn.execute(
        select(tl.segments.c.last_position).where(tl.segments.c.number == number - 1)
    ).scalar()
    window = Window(number - 1, previous or 0, segment["min_time"])
    models = held_models(conn, tl, window, NOW, Scope())
    columns = ["segment", *MODEL_GROUPS, "models", *RUN_COUNTS]
    rows = [dict(zip(columns, (number, *row), strict=True)) for row in models]
    insert_rows(conn, tl.checkpoint_models, rows)
    metrics = held_metrics(conn, tl, window, NOW, Scope())
    insert_rows(conn, tl.checkpoint_metrics, [{"segment": number, **vars(m)} for m in metrics])
