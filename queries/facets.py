"""Facets of a search: how many of the models it finds have each task, framework,
status, project, tag or environment (what a catalogue's filters show beside them)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from sqlalchemy import ColumnElement, func, select

from queries.reading import Snapshot
from queries.sources import Source

COLUMN_FACETS = ("task", "framework", "status", "project")


def facet_counts(
    snapshot: Snapshot, source: Source, where: list[ColumnElement[bool]], asked: str
) -> dict[str, dict[str, int]]:
    """By facet, the count of the models ``where`` finds for each value, most first."""
    models, names = source.models.c, asked.split(",")
    counts: dict[str, Counter[str]] = {}
    for name in (n for n in names if n in COLUMN_FACETS):
        grouped = select(models[name], func.count()).where(*where).group_by(models[name])
        counts[name] = Counter(dict(snapshot.conn.execute(grouped).all()))
    if "tags" in names or "environment" in names:
        rows = snapshot.conn.execute(select(models.tags, models.deployments).where(*where))
        tags, environments = Counter[str](), Counter[str]()
        for row_tags, deployments in rows:
            tags.update(_listed(row_tags))
            environments.update(_listed(deployments))
        counts["tags"], counts["environment"] = tags, environments
    return {name: dict(sorted(counts[name].items(), key=_most_first)) for name in names}


def _listed(value: Any) -> list[str]:
    """A JSON list's items, or a JSON object's keys (a driver may give either as text)."""
    if isinstance(value, str):
        value = orjson.loads(value)
    return list(value)


def _most_first(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])
