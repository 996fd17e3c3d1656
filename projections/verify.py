"""`modelledger verify`: rebuild a projection into scratch tables and compare them
with the live ones, row by row, at the same log position."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, select

from projections.applying import apply_events, decode, topics_of
from projections.base import Projection
from projections.follow import read_page
from queries.ports import EventLog
from read_model.state import read_state

SCRATCH_GENERATION = 0  # live generations start at 1
MAX_REPORTED = 20


@dataclass(frozen=True)
class Verdict:
    projection: str
    position: int
    rows: int
    differences: list[str]

    @property
    def consistent(self) -> bool:
        return not self.differences


def verify_projection(
    engine: Engine,
    event_log: EventLog,
    projection: type[Projection],
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    attempts: int = 10,
) -> Verdict:
    with engine.begin() as conn:
        projection.drop_tables(conn, SCRATCH_GENERATION)
        projection.create_tables(conn, SCRATCH_GENERATION)
    try:
        built = 0
        topics = topics_of(projection)
        for _ in range(attempts):
            with engine.connect() as conn:
                state = read_state(conn, projection.name)
            if state is None:
                return Verdict(projection.name, 0, 0, ["the projection has not started"])
            built = _build(
                engine, event_log, projection, topics, built, state.position, on_progress
            )
            verdict = _compare_at(engine, projection, built)
            if verdict is not None:
                return verdict
        return Verdict(projection.name, built, 0, ["the live projection kept moving; retry"])
    finally:
        with engine.begin() as conn:
            projection.drop_tables(conn, SCRATCH_GENERATION)


def _build(
    engine: Engine,
    event_log: EventLog,
    projection: type[Projection],
    topics: set[str],
    after: int,
    target: int,
    on_progress: Callable[[int, int], None],
) -> int:
    while after < target:
        page = [n for n in read_page(event_log, after, 5000) if n.id <= target]
        if not page:
            break
        with engine.begin() as conn:
            apply_events(conn, projection, SCRATCH_GENERATION, decode(event_log, topics, page))
        after = page[-1].id
        on_progress(after, target)
    return after


def _compare_at(engine: Engine, projection: type[Projection], position: int) -> Verdict | None:
    """Compare in one snapshot in which the live projection stands at ``position``;
    None if it has moved on (build further and try again)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        state = read_state(conn, projection.name)
        if state is None or state.position != position:
            return None
        live = projection.table_names(state.generation, conn.dialect.name)
        scratch = projection.table_names(SCRATCH_GENERATION, conn.dialect.name)
        # Reflected together: one table at a time was most of a verify on PostgreSQL.
        tables = MetaData()
        tables.reflect(conn, only=[*live, *scratch])
        differences: list[str] = []
        rows = 0
        for live_name, scratch_name in zip(live, scratch, strict=True):
            live_rows = _rows(conn, tables.tables[live_name])
            rows += len(live_rows)
            differences += diff_rows(live_name, live_rows, _rows(conn, tables.tables[scratch_name]))
        return Verdict(projection.name, position, rows, differences[:MAX_REPORTED])


def _rows(conn: Connection, table: Table) -> list[dict[str, Any]]:
    keys = list(table.primary_key.columns) or list(table.columns)
    skip = {"search"}  # PostgreSQL computes it from the other columns
    return [
        {k: v for k, v in row._mapping.items() if k not in skip}
        for row in conn.execute(select(table).order_by(*keys))
    ]


def diff_rows(table: str, live: list[dict[str, Any]], rebuilt: list[dict[str, Any]]) -> list[str]:
    """Differences between two row lists, value for value: metric sums are exact
    (``read_model.exact``), so batch boundaries change no digit."""
    differences = []
    if len(live) != len(rebuilt):
        differences.append(f"{table}: {len(live)} live rows, {len(rebuilt)} rebuilt")
    for a, b in zip(live, rebuilt, strict=False):
        if not same(a, b):
            differences.append(f"{table}: live {a} != rebuilt {b}")
    return differences


def same(a: Any, b: Any) -> bool:
    """Exactly equal, floats to the last digit."""
    return bool(a == b)
