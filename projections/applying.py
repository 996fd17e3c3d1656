"""A projection's tables and state row, and applying a page of events to them: what
the runner (projections/runner.py), a rebuild and `verify` share."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, update
from sqlalchemy.exc import IntegrityError

from projections.base import Projection
from projections.kept import KeptRows
from queries.ports import EventLog
from read_model.state import (
    STATE_METADATA,
    ProjectionState,
    ddl_one_at_a_time,
    projection_state,
    read_state,
)
from write_model.model import AIModel


class ProjectionFailed(Exception):
    """An event the projection could not apply: it stops there until a restart."""

    def __init__(self, position: int, error: BaseException) -> None:
        super().__init__(f"event at position {position}: {type(error).__name__}: {error}")
        self.position = position


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ensure_projection(
    engine: Engine, projection: type[Projection], *, clear_failure: bool = True
) -> ProjectionState:
    """Create the state row and first tables if missing; ask for a rebuild when
    the code's version differs from the stored one; clear a failure (a worker's
    restart is how a fix is deployed: the projection resumes from its position).
    Processes that do not run the projection (API replicas, ``verify``) pass
    ``clear_failure=False``: they must not hide a failure they did not fix."""
    with engine.begin() as conn:
        ddl_one_at_a_time(conn)
        STATE_METADATA.create_all(conn)
    with engine.begin() as conn:
        ddl_one_at_a_time(conn)
        state = read_state(conn, projection.name)
        if state is None:
            projection.create_tables(conn, 1)
            try:
                with conn.begin_nested():
                    conn.execute(
                        projection_state.insert().values(
                            name=projection.name,
                            version=projection.version,
                            generation=1,
                            position=0,
                            rebuild_requested=False,
                            status="running",
                            updated_at=now_text(),
                        )
                    )
            except IntegrityError:
                pass  # another process created it first
        else:
            values: dict[str, Any] = {}
            if state.version != projection.version and state.rebuild_generation is None:
                values["rebuild_requested"] = True
            if clear_failure and state.status == "failed":
                values.update(status="running", error=None, error_position=None)
            if values:
                update_state(conn, projection.name, **values)
        found = read_state(conn, projection.name)
    assert found is not None
    return found


def decode(
    event_log: EventLog, topics: set[str], page: Sequence[Notification]
) -> list[tuple[int, AIModel.Event]]:
    """The page's events this projection reads (others are not even decoded)."""
    to_event = event_log.decode
    return [(n.id, to_event(n)) for n in page if n.topic in topics]


def apply_events(
    conn: Connection,
    projection: type[Projection],
    generation: int,
    events: list[tuple[int, AIModel.Event]],
    kept: KeptRows | None = None,
) -> Projection | None:
    """One batch: load what it touches, apply each event, write the changes."""
    if not events:
        return None
    batch = projection(conn, generation)
    batch.kept = kept
    batch.prepare(events)
    for position, event in events:
        projection.handler(type(event))(batch, event, position)  # = batch.process_event
    batch.flush()
    return batch


def topics_of(projection: type[Projection]) -> set[str]:
    return {get_topic(cls) for cls in projection.topics}


def update_state(conn: Connection, name: str, **values: Any) -> int:
    result = conn.execute(
        update(projection_state)
        .where(projection_state.c.name == name)
        .values(updated_at=now_text(), **values)
    )
    return result.rowcount
