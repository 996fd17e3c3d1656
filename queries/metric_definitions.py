"""Metric definitions as readers see them: every metric a trained version reported or a
team declared, how it is read (declared, or its name's default) and how many versions
report it, from the catalogue (one snapshot: the counts and the definitions agree)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from sqlalchemy import func, select

from queries.messages import Position
from queries.reading import Snapshot
from queries.visibility import Projects
from read_model.tables import ALL, catalogue_tables
from write_model.metric_definition import default_direction
from write_model.values import MAX_METRIC_NAME_LENGTH, has_control_characters


def _one_line(name: str) -> str:
    if has_control_characters(name):
        raise ValueError("must not contain control characters")
    return name


MetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_METRIC_NAME_LENGTH),
    AfterValidator(_one_line),
]


class ListMetricDefinitions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_position: Position | None = None


class GetMetricDefinition(ListMetricDefinitions):
    name: MetricName


def metric_definitions(
    snapshot: Snapshot, visible: Projects, name: str | None = None
) -> dict[str, Any]:
    """Every metric seen (in the projects in view) or declared; ``name``: that one (any
    name: one nobody reported nor declared has its default)."""
    t = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name)
    stats, table = t.metric_stats, t.definitions
    projects = [ALL] if visible is None else sorted(visible)
    counting = (
        select(stats.c.metric, func.sum(stats.c.count))
        .where(stats.c.project.in_(projects), stats.c.task == ALL, stats.c.count > 0)
        .group_by(stats.c.metric)
    )
    declaring = select(table).where(table.c.declared.is_(True))
    if name is not None:
        counting, declaring = (
            counting.where(stats.c.metric == name),
            declaring.where(table.c.name == name),
        )
    counts = {metric: int(count) for metric, count in snapshot.conn.execute(counting)}
    declared = {row.name: row for row in snapshot.conn.execute(declaring)}
    if name is not None:
        return _entry(name, declared.get(name), counts.get(name, 0))
    names = sorted(counts.keys() | declared.keys())
    return {"items": [_entry(n, declared.get(n), counts.get(n, 0)) for n in names]}


def _entry(name: str, declared: Any, versions: int) -> dict[str, Any]:
    if declared is None:
        return {
            "name": name,
            "direction": default_direction(name).value,
            "source": "default",
            "unit": None,
            "description": None,
            "versions": versions,
            "changed_at": None,
            "changed_by": None,
        }
    return {
        "name": name,
        "direction": declared.direction,
        "source": "declared",
        "unit": declared.unit,
        "description": declared.description,
        "versions": versions,
        "changed_at": declared.changed_at,
        "changed_by": declared.changed_by,
    }
