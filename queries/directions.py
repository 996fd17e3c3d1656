"""The direction each metric is read in: declared (a metric definition) or, for a metric
nobody declared, its name's default (write_model.metric_definition). Read from the same
tables, in the same snapshot, as the answer it ranks: the catalogue's definitions for an
answer at a position, the timeline's for an answer as of a time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from queries.reading import Snapshot
from queries.sources import held_at
from read_model.tables import catalogue_tables
from read_model.timeline import timeline_tables
from write_model.metric_definition import Direction, default_direction


@dataclass(frozen=True)
class Directions:
    declared: Mapping[str, Direction] = field(default_factory=dict)
    # The position of the last definition change the tables had taken in (0: none ever):
    # two reads of the catalogue with one stamp rank alike.
    stamp: int = 0

    def of(self, metric: str) -> Direction:
        return self.declared.get(metric) or default_direction(metric)

    def minimises(self, metric: str) -> bool:
        return self.of(metric) is Direction.MINIMIZE

    def best(self, extremes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """A model's best value of each metric, and the first version that reached it,
        from its lowest and highest (projections.metric_values)."""
        side = {name: "min" if self.minimises(name) else "max" for name in extremes}
        return {
            name: {"value": m[f"{side[name]}_value"], "model_version": m[f"{side[name]}_version"]}
            for name, m in sorted(extremes.items())
        }

    def best_of_versions(self, versions: Iterable[Any]) -> dict[str, dict[str, Any]]:
        """The same from a model's versions (a model folded from the log): the first
        version to reach the best value wins a tie, as in the tables."""
        best: dict[str, dict[str, Any]] = {}
        for version in versions:
            for name, reported in version.metrics.items():
                value, seen = float(reported), best.get(name)
                lower = self.minimises(name)
                if seen is None or (value < seen["value"] if lower else value > seen["value"]):
                    best[name] = {"value": value, "model_version": version.number}
        return dict(sorted(best.items()))


def directions_now(conn: Connection, generation: int) -> Directions:
    """The catalogue's definitions (one small table: a team declares tens, not thousands)."""
    table = catalogue_tables(generation, conn.dialect.name).definitions
    rows = conn.execute(
        select(table.c.name, table.c.declared, table.c.direction, table.c.position)
    ).all()
    declared = {row.name: Direction(row.direction) for row in rows if row.declared}
    return Directions(declared, max((row.position for row in rows), default=0))


def directions_as_of(conn: Connection, generation: int, as_of: str) -> Directions:
    """The definitions that held at ``as_of``, from the timeline."""
    table = timeline_tables(generation).definitions
    rows = conn.execute(select(table.c.name, table.c.direction).where(held_at(table, as_of)))
    return Directions({row.name: Direction(row.direction) for row in rows}, stamp=-1)


def directions_for(snapshot: Snapshot, as_of: str | None) -> Directions:
    """For a read of the catalogue (now) or of the timeline (``as_of``)."""
    if as_of is None:
        return directions_now(snapshot.conn, snapshot.generation)
    return directions_as_of(snapshot.conn, snapshot.generation, as_of)
