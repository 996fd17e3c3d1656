"""Metric definitions in the read tables: as they stand, in the catalogue (so an answer
read at a catalogue position ranks with the definitions of that position), and from
when to when each held, in the timeline (so an answer as of T ranks with those of T).
Nothing ranked is stored: the readers apply the directions (queries.directions)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, update

from projections.base import delete_in, event_time, insert_rows, select_in
from read_model.timeline import OPEN
from write_model.metric_definition import MetricDefinition, default_direction

DefinitionEvent = (
    MetricDefinition.MetricDefined
    | MetricDefinition.MetricRedefined
    | MetricDefinition.MetricDefinitionRemoved
)


def _declared(event: DefinitionEvent) -> bool:
    return not isinstance(event, MetricDefinition.MetricDefinitionRemoved)


class CurrentDefinitions:
    """A batch's definition changes, for the catalogue: the last one per metric wins."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def take(self, event: DefinitionEvent, position: int) -> None:
        declared = _declared(event)
        self.rows[event.name] = {
            "name": event.name,
            "declared": declared,
            # a removed definition keeps its row (and the position of its last change)
            "direction": (
                event.direction  # type: ignore[union-attr]
                if declared
                else default_direction(event.name).value
            ),
            "unit": event.unit if declared else None,  # type: ignore[union-attr]
            "description": event.description if declared else None,  # type: ignore[union-attr]
            "changed_at": event_time(event),
            "changed_by": event.actor,
            "position": position,
        }

    def write(self, conn: Connection, table: Table) -> None:
        if not self.rows:
            return
        delete_in(conn, table, "name", sorted(self.rows))
        insert_rows(conn, table, list(self.rows.values()))


class DefinitionStretches:
    """A batch's definition changes, for the timeline: each ends the metric's open
    stretch, and a declaration opens the next."""

    def __init__(self) -> None:
        self.events: list[tuple[int, DefinitionEvent]] = []

    def take(self, event: DefinitionEvent, position: int) -> None:
        self.events.append((position, event))

    def write(self, conn: Connection, table: Table) -> None:
        if not self.events:
            return
        names = sorted({event.name for _, event in self.events})
        holding = {  # each metric's open stretch, stored by an earlier batch
            row.name: dict(row._mapping)
            for row in select_in(conn, table, "name", names, table.c.to_time == OPEN)
        }
        stored = {id(stretch) for stretch in holding.values()}
        ended, new = [], []
        for position, event in self.events:
            when, stretch = event_time(event), holding.pop(event.name, None)
            if stretch is not None:
                stretch.update(to_position=position, to_time=when)
                if id(stretch) in stored:
                    ended.append(stretch)
            if _declared(event):
                holding[event.name] = {
                    "name": event.name,
                    "from_position": position,
                    "from_time": when,
                    "to_position": None,
                    "to_time": OPEN,
                    "direction": event.direction,  # type: ignore[union-attr]
                    "unit": event.unit,  # type: ignore[union-attr]
                    "description": event.description,  # type: ignore[union-attr]
                }
                new.append(holding[event.name])
        if ended:
            conn.execute(
                update(table)
                .where(
                    and_(
                        table.c.name == bindparam("key_name"),
                        table.c.from_position == bindparam("key_from"),
                    )
                )
                .values(to_position=bindparam("to_position"), to_time=bindparam("to_time")),
                [
                    {
                        "key_name": s["name"],
                        "key_from": s["from_position"],
                        "to_position": s["to_position"],
                        "to_time": s["to_time"],
                    }
                    for s in ended
                ],
            )
        insert_rows(conn, table, new)
