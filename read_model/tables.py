"""The read tables (SQLAlchemy Core), one set per projection generation.

A projection writes into tables named ``<base>_g<generation>``: a rebuild fills
generation N+1 while N keeps serving, then one transaction points the
projection's state row at N+1 (blue/green). Queries look the generation up in
that row (``read_model.state``), so no DDL is needed to swap.

The definitions are cached per generation: SQLAlchemy caches compiled SQL per
Table object, so building them per query cost more than the query itself.

Times are ISO 8601 UTC strings with microseconds (``event_time``): they sort
the same way as the instants on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Computed,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql

from read_model.exact import ExactDecimal

# Byte order on every backend, so names sort the same on SQLite and PostgreSQL.
SORTABLE = String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")
TSVECTOR = postgresql.TSVECTOR()
# Compared byte by byte: a locale's collation made the timeline's scans several times slower.
C_TEXT = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

# Statistics rows for "every project" / "every task" use this key (names are never empty).
ALL = ""

# A projection's version is its tables' shape and meaning: bumping one makes
# the projection rebuild itself into new tables on start.
# 2: versions carry output_model; 3: pending_deployments; 4: rows indexed by position;
# 5: metric sums exact (read_model.exact), not floats; 6: metric definitions, and each
# model's metric extremes (its best is read with the metric's direction)
CATALOGUE_VERSION = 6
VERSIONS_VERSION = 4  # 2: output_model; 3: description and tags; 4: source_version
DEPLOYMENTS_VERSION = 2  # 2: indexed by time, for as_of
# 2: narrow stretches ending at OPEN; 3: value indexes; 4: checkpoints; 5: exact metric sums;
# 6: metric definitions through time, and each model's metric extremes
TIMELINE_VERSION = 6


def metric_extremes() -> list[Column[Any]]:
    """One model's values of one metric, over its versions, and what it belongs to."""
    return [
        Column("project", SORTABLE, nullable=False),
        Column("task", SORTABLE, nullable=False),
        Column("archived", Boolean, nullable=False),
        Column("count", Integer, nullable=False),
        Column("total", ExactDecimal, nullable=False),  # exact: read_model.exact
        Column("min_value", Float, nullable=False),
        Column("min_version", Integer, nullable=False),
        Column("max_value", Float, nullable=False),
        Column("max_version", Integer, nullable=False),
    ]


def metric_statistics() -> list[Column[Any]]:
    """One metric's statistics counters in one (project, task), either may be ALL."""
    return [
        Column("project", SORTABLE, primary_key=True),
        Column("task", SORTABLE, primary_key=True),
        Column("metric", SORTABLE, primary_key=True),
        Column("count", BigInteger, nullable=False),
        Column("total", ExactDecimal, nullable=False),  # exact: read_model.exact
        Column("min_value", Float, nullable=False),
        Column("max_value", Float, nullable=False),
    ]


def generation_name(base: str, generation: int) -> str:
    return f"{base}_g{generation}"


@dataclass(frozen=True)
class CatalogueTables:
    """The catalogue read model: one row per model, search, leaderboards, statistics."""

    metadata: MetaData
    models: Table
    tags: Table
    metrics: Table
    counts: Table
    metric_stats: Table
    definitions: Table  # the metrics whose direction was declared (and since removed)
    fts_name: str  # SQLite's FTS5 index (a virtual table SQLAlchemy does not model)


@cache
def catalogue_tables(generation: int, dialect: str) -> CatalogueTables:
    """``dialect`` picks the full-text index: a tsvector column on PostgreSQL,
    an FTS5 table on SQLite (created by ``projections.catalogue``)."""
    md = MetaData()
    name = generation_name("catalogue", generation)
    search: list[Column[object]] = []
    if dialect == "postgresql":
        search.append(
            Column(
                "search",
                TSVECTOR,
                Computed(
                    "to_tsvector('simple', name || ' ' || description || ' ' || tags_text)",
                    persisted=True,
                ),
            )
        )
    models = Table(
        name,
        md,
        Column("id", SORTABLE, primary_key=True),
        # SQLite's FTS5 index points at this integer; it never changes for a model.
        Column("row_number", BigInteger, nullable=False, unique=True),
        Column("name", SORTABLE, nullable=False),
        Column("project", SORTABLE, nullable=False),
        Column("description", Text, nullable=False),
        Column("task", SORTABLE, nullable=False),
        Column("framework", SORTABLE, nullable=False),
        Column("tags", JSON, nullable=False),
        Column("tags_text", Text, nullable=False),
        Column("configuration", JSON, nullable=False),
        Column("owner", SORTABLE, nullable=False),
        Column("created_by", String, nullable=False),
        Column("status", String(16), nullable=False),
        Column("archived", Boolean, nullable=False),
        Column("latest_version", Integer, nullable=False),
        Column("training_runs", JSON, nullable=False),  # run id -> run, in start order
        Column("last_finished_run", String),
        Column("versions", JSON, nullable=False),
        Column("metric_extremes", JSON, nullable=False),  # metric -> its lowest, its highest
        Column("deployments", JSON, nullable=False),  # environment -> what it serves
        # environment -> the request a provider is carrying out there
        Column("pending_deployments", JSON, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
        Column("version", Integer, nullable=False),
        Column("position", BigInteger, nullable=False),
        *search,
    )
    Index(f"{name}_project_name", models.c.project, models.c.name)
    Index(f"{name}_name", models.c.name, models.c.id)
    Index(f"{name}_created", models.c.created_at, models.c.id)
    Index(f"{name}_updated", models.c.updated_at, models.c.id)
    Index(f"{name}_task", models.c.task, models.c.name)
    if search:
        Index(f"{name}_search", models.c.search, postgresql_using="gin")
    tags = Table(
        generation_name("catalogue_tags", generation),
        md,
        Column("tag", SORTABLE, primary_key=True),
        Column("model_id", SORTABLE, primary_key=True),
    )
    metrics = Table(
        generation_name("catalogue_metrics", generation),
        md,
        Column("model_id", SORTABLE, primary_key=True),
        Column("metric", SORTABLE, primary_key=True),
        *metric_extremes(),
    )
    Index(f"{metrics.name}_min", metrics.c.metric, metrics.c.min_value, metrics.c.model_id)
    Index(f"{metrics.name}_max", metrics.c.metric, metrics.c.max_value, metrics.c.model_id)
    counts = Table(
        generation_name("catalogue_counts", generation),
        md,
        Column("project", SORTABLE, primary_key=True),
        Column("task", SORTABLE, primary_key=True),
        Column("dimension", String(32), primary_key=True),
        Column("key", SORTABLE, primary_key=True),
        Column("count", BigInteger, nullable=False),
    )
    metric_stats = Table(
        generation_name("catalogue_metric_stats", generation),
        md,
        *metric_statistics(),
    )
    definitions = Table(
        generation_name("catalogue_metric_definitions", generation),
        md,
        Column("name", SORTABLE, primary_key=True),
        Column("declared", Boolean, nullable=False),  # false: removed, the default again
        Column("direction", String(8), nullable=False),
        Column("unit", Text),
        Column("description", Text),
        Column("changed_at", String(40), nullable=False),
        Column("changed_by", String, nullable=False),
        Column("position", BigInteger, nullable=False),  # of its last change
    )
    return CatalogueTables(
        md,
        models,
        tags,
        metrics,
        counts,
        metric_stats,
        definitions,
        generation_name("catalogue_fts", generation),
    )


@cache
def versions_table(generation: int) -> Table:
    md = MetaData()
    name = generation_name("model_versions", generation)
    return Table(
        name,
        md,
        Column("model_id", SORTABLE, primary_key=True),
        Column("number", Integer, primary_key=True),
        Column("run_id", String, nullable=False),
        Column("metrics", JSON, nullable=False),
        Column("artifact_uri", Text),
        Column("output_model", Text),
        Column("created_at", String(40), nullable=False),
        Column("created_by", String, nullable=False),
        Column("position", BigInteger, nullable=False),
        Column("description", Text, nullable=False),
        Column("tags", JSON, nullable=False),
        Column("source_version", Integer),  # its number where it was imported from
    )


@cache
def deployments_table(generation: int) -> Table:
    """Every stretch of time a version served an environment: to_* NULL = serving now."""
    md = MetaData()
    name = generation_name("deployments", generation)
    table = Table(
        name,
        md,
        Column("model_id", SORTABLE, primary_key=True),
        Column("environment", SORTABLE, primary_key=True),
        Column("from_position", BigInteger, primary_key=True),
        Column("model_version", Integer, nullable=False),
        Column("endpoint_url", Text),
        Column("action", String(16), nullable=False),  # deployed | rolled_back
        Column("from_time", String(40), nullable=False),
        Column("deployed_by", String, nullable=False),
        Column("to_position", BigInteger),
        Column("to_time", String(40)),
        Column("ended_by", String(16)),  # deployed | rolled_back | undeployed
    )
    Index(f"{name}_environment", table.c.environment, table.c.to_position)
    Index(f"{name}_environment_time", table.c.environment, table.c.from_time)
    return table


def fts5_statements(table: str, fts: str) -> list[str]:
    """An external-content FTS5 index kept in step with the table by triggers."""
    columns = "name, description, tags_text"
    new = "new.row_number, new.name, new.description, new.tags_text"
    old = "old.row_number, old.name, old.description, old.tags_text"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({columns}, "
        f"content='{table}', content_rowid='row_number')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {columns}) VALUES ({new}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {columns}) VALUES ('delete', {old}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE ON {table} "
        "WHEN old.name IS NOT new.name OR old.description IS NOT new.description "
        "OR old.tags_text IS NOT new.tags_text BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {columns}) VALUES ('delete', {old}); "
        f"INSERT INTO {fts}(rowid, {columns}) VALUES ({new}); END",
    ]
