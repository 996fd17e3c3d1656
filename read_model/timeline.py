"""The timeline read model's tables: the registry through time.

A stretch is one state a model (or one of its metrics) was in, from the event
that began it until the next one of that model ended it. Statistics as of a
time also read *checkpoints*: the statistics counters as the timeline stood at
the end of each segment of the log (``segments``), so an answer adds up one
checkpoint and the few stretches that began or ended since, not half the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from read_model.tables import (
    C_TEXT,
    SORTABLE,
    generation_name,
    metric_extremes,
    metric_statistics,
)

TAG_SEPARATOR = "\x1f"
WORD = re.compile(r"\w+", re.UNICODE)


def words_of(*texts: str) -> str:
    """The lower-case words of the texts between spaces: ``LIKE '% word%'`` then
    matches any word that starts with ``word``."""
    return " " + " ".join(w.lower() for text in texts for w in WORD.findall(text)) + " "


def tags_key(tags: Iterable[str]) -> str:
    return TAG_SEPARATOR + TAG_SEPARATOR.join(sorted(tags)) + TAG_SEPARATOR


@dataclass(frozen=True)
class TimelineTables:
    """The registry through time: a row per stretch of a model's state, and of each
    of its metrics. A stretch holds from ``from_time`` until ``to_time`` (``OPEN``:
    it still holds; a value, not NULL, so one index range finds what held at a
    time). ``state`` keeps each model's whole catalogue row, for the next batch
    to go on from, apart from the stretches so they stay narrow to scan."""

    metadata: MetaData
    models: Table
    metrics: Table
    state: Table
    definitions: Table  # each declared metric definition, from when to when it held
    segments: Table
    checkpoint_models: Table
    checkpoint_metrics: Table


# What statistics count models by (environments aside: a model is in several).
STATISTICS_GROUPS = ("project", "task", "status", "framework")
RUN_COUNTS = ("runs_started", "runs_completed", "runs_failed")

OPEN = "9999-12-31T23:59:59.999999+00:00"  # the to_time of a stretch that still holds
NOW = "9999-12-31T23:59:59.999998+00:00"  # an as_of after every event: what holds now


def stretch_columns() -> list[Column[Any]]:
    """From when to when a stretch held (part of its key: where it began)."""
    return [
        Column("from_position", BigInteger, primary_key=True),
        Column("from_time", SORTABLE, nullable=False),
        Column("to_position", BigInteger),
        Column("to_time", SORTABLE, nullable=False),
    ]


@cache
def timeline_tables(generation: int) -> TimelineTables:
    md = MetaData()
    name = generation_name("timeline", generation)
    models = Table(
        name,
        md,
        Column("id", SORTABLE, primary_key=True),
        *stretch_columns(),
        Column("version", Integer, nullable=False),
        Column("name", SORTABLE, nullable=False),
        Column("project", SORTABLE, nullable=False),
        Column("description", Text, nullable=False),
        Column("task", SORTABLE, nullable=False),
        Column("framework", SORTABLE, nullable=False),
        Column("tags", JSON, nullable=False),
        Column("tags_key", C_TEXT, nullable=False),  # "\x1fa\x1fb\x1f": LIKE finds a tag
        Column("words", C_TEXT, nullable=False),  # " name words tags ": LIKE finds a prefix
        Column("owner", SORTABLE, nullable=False),
        Column("status", String(16), nullable=False),
        Column("archived", Boolean, nullable=False),
        Column("latest_version", Integer, nullable=False),
        Column("metric_extremes", JSON, nullable=False),  # metric -> its lowest, its highest
        Column("deployments", JSON, nullable=False),  # environment -> version, endpoint
        Column("environments", C_TEXT, nullable=False),  # "\x1fprod\x1f", "" when none
        Column("runs_started", Integer, nullable=False),
        Column("runs_completed", Integer, nullable=False),
        Column("runs_failed", Integer, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
    )
    # Held at T: from_time <= T < to_time. Early T: a short range of the first;
    # late T: of the second; either way the other bound is checked in the index.
    Index(f"{name}_from", models.c.from_time, models.c.to_time)
    Index(f"{name}_to", models.c.to_time, models.c.from_time)
    Index(f"{name}_name", models.c.name, models.c.id, models.c.from_time, models.c.to_time)
    metrics = Table(
        generation_name("timeline_metrics", generation),
        md,
        Column("model_id", SORTABLE, primary_key=True),
        Column("metric", SORTABLE, primary_key=True),
        *stretch_columns(),
        Column("name", SORTABLE, nullable=False),
        *metric_extremes(),
    )
    Index(f"{metrics.name}_from", metrics.c.metric, metrics.c.from_time, metrics.c.to_time)
    Index(f"{metrics.name}_to", metrics.c.metric, metrics.c.to_time, metrics.c.from_time)
    # A leaderboard walks the best values first and skips what did not hold then.
    for side in ("min", "max"):
        value = metrics.c[f"{side}_value"]
        Index(
            f"{metrics.name}_{side}",
            metrics.c.metric,
            value,
            metrics.c.from_time,
            metrics.c.to_time,
        )
    state = Table(
        generation_name("timeline_state", generation),
        md,
        Column("id", SORTABLE, primary_key=True),
        Column("document", JSON, nullable=False),
        Column("metric_state", JSON, nullable=False),
    )
    definitions = Table(
        generation_name("timeline_metric_definitions", generation),
        md,
        Column("name", SORTABLE, primary_key=True),
        *stretch_columns(),
        Column("direction", String(8), nullable=False),
        Column("unit", Text),
        Column("description", Text),
    )
    Index(f"{definitions.name}_from", definitions.c.from_time, definitions.c.to_time)
    return TimelineTables(
        md, models, metrics, state, definitions, *checkpoint_tables(md, generation)
    )


def checkpoint_tables(md: MetaData, generation: int) -> tuple[Table, Table, Table]:
    """The log in segments of about ``checkpoint_every`` events, each with the span
    of its events' times; the statistics counters at the end of each closed one."""
    segments = Table(
        generation_name("timeline_segments", generation),
        md,
        Column("number", Integer, primary_key=True),
        Column("last_position", BigInteger, nullable=False),
        Column("events", Integer, nullable=False),
        Column("min_time", SORTABLE, nullable=False),  # of this segment's events
        Column("max_time", SORTABLE, nullable=False),
        Column("high_time", SORTABLE, nullable=False),  # of all events up to its end
        Column("closed", Boolean, nullable=False),
    )
    models = Table(
        generation_name("timeline_checkpoint_models", generation),
        md,
        Column("segment", Integer, primary_key=True),
        *(Column(name, SORTABLE, primary_key=True) for name in STATISTICS_GROUPS),
        Column("environments", C_TEXT, primary_key=True),
        Column("models", Integer, nullable=False),
        *(Column(name, Integer, nullable=False) for name in RUN_COUNTS),
    )
    metrics = Table(
        generation_name("timeline_checkpoint_metrics", generation),
        md,
        Column("segment", Integer, primary_key=True),
        *metric_statistics(),
    )
    return segments, models, metrics
