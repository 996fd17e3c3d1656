"""Operators' view of the projections: where each stands against the log, and
whether a live process holds it.

Lag in seconds: 0 at the log's head, else how long ago the oldest event the
projection has not projected yet was recorded (one event read per position
behind the head). A projection lags when that exceeds the allowed lag, or when
no live process holds its lease (nobody moves it on).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from eventsourcing.domain import CanMutateAggregate
from sqlalchemy import Engine, update

from queries.errors import UnknownProjection
from queries.ports import EventLog
from queries.reading import read_errors
from read_model.holders import holder_is_gone
from read_model.state import ProjectionState, projection_state, read_states

log = logging.getLogger("modelledger.queries")

# When the first event after a position was recorded (epoch seconds; None: no such event).
EventTime = Callable[[int], float | None]
# Statuses of a projection whose live tables move on (a rebuild fills others meanwhile).
SERVING = frozenset({"running", "rebuilding"})


def projection_report(
    engine: Engine, head: int, versions: dict[str, int], event_time: EventTime
) -> list[dict[str, Any]]:
    """One entry per projection the code knows, in the code's order."""
    with read_errors(), engine.connect() as conn:
        states = read_states(conn)
    now = time.time()
    lags = lag_seconds(states.values(), head, event_time, now)
    report = []
    for name, code_version in versions.items():
        state = states.get(name)
        if state is None:
            report.append({"name": name, "version": code_version, "status": "not started"})
            continue
        rebuilding = state.rebuild_generation is not None or state.rebuild_requested
        report.append(
            {
                "name": name,
                "version": state.version,
                "code_version": code_version,
                "generation": state.generation,
                "position": state.position,
                "head": head,
                "lag": max(0, head - state.position),
                "lag_seconds": lags[name],
                "status": "rebuilding" if rebuilding and state.status != "failed" else state.status,
                "error": state.error,
                "error_position": state.error_position,
                "rebuild": (
                    {"generation": state.rebuild_generation, "position": state.rebuild_position}
                    if state.rebuild_generation is not None
                    else None
                ),
                "worker": state.owner,
                "holder_alive": holder_alive(state, now),
                "updated_at": state.updated_at,
            }
        )
    return report


def lagging(report: list[dict[str, Any]], max_lag_seconds: float) -> dict[str, dict[str, Any]]:
    """The projections more than ``max_lag_seconds`` behind the log, or held by no live
    process (/health and /health/detailed say degraded while there is one)."""
    return {
        entry["name"]: {"lag_seconds": entry["lag_seconds"], "holder_alive": entry["holder_alive"]}
        for entry in report
        if "lag_seconds" in entry
        and (entry["lag_seconds"] > max_lag_seconds or not entry["holder_alive"])
    }


def holder_alive(state: ProjectionState, now: float) -> bool:
    """Held, the lease not run out, and not by a process known to be gone."""
    return (
        state.owner is not None
        and (state.lease_until or 0.0) >= now
        and not holder_is_gone(state.owner)
    )


def lag_seconds(
    states: Iterable[ProjectionState], head: int, event_time: EventTime, now: float
) -> dict[str, float]:
    recorded: dict[int, float | None] = {}  # projections at one position share a read
    lags = {}
    for state in states:
        if state.position >= head:
            lags[state.name] = 0.0
            continue
        if state.position not in recorded:
            recorded[state.position] = event_time(state.position)
        since = recorded[state.position]
        lags[state.name] = 0.0 if since is None else round(max(0.0, now - since), 3)
    return lags


def event_time_in(event_log: EventLog) -> EventTime:
    """Reads the first event after a position from the log, for its time."""

    def first_after(position: int) -> float | None:
        page = event_log.page(position, 1)
        if not page:
            return None
        try:
            event = event_log.decode(page[0])
        except Exception:  # (a topic this version does not know): the lag is unknown
            log.warning("the event after position %d cannot be decoded", position)
            return None
        if not isinstance(event, CanMutateAggregate):  # every event of ours is one
            return None
        return event.timestamp.timestamp()

    return first_after


def request_rebuild(engine: Engine, name: str, known: set[str]) -> None:
    """The worker holding the projection picks this up between batches."""
    if name not in known:
        raise UnknownProjection(
            f"no projection named {name!r}; known: {sorted(known)}", field="name"
        )
    with read_errors(), engine.begin() as conn:
        rows = conn.execute(
            update(projection_state)
            .where(projection_state.c.name == name)
            .values(rebuild_requested=True)
        ).rowcount
    if rows != 1:
        raise UnknownProjection(f"projection {name!r} has not started yet", field="name")
