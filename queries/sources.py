"""Where search and leaderboards read models from: the catalogue (now) or the
timeline (as the registry stood at a time). Both have a models table keyed by
``id`` with the same summary columns, and a per-model metrics table; they differ
in how a tag or a word is found and in which rows count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    column,
    exists,
    func,
    select,
    text,
    true,
)

from queries.reading import Snapshot
from read_model.tables import catalogue_tables
from read_model.timeline import NOW, TAG_SEPARATOR, timeline_tables
from write_model.values import instant


@dataclass(frozen=True)
class Source:
    models: Table
    metrics: Table
    valid_models: ColumnElement[bool]  # the rows that are models (at the time asked)
    valid_metrics: ColumnElement[bool]
    has_tag: Callable[[str], ColumnElement[bool]]
    matches: Callable[[list[str]], ColumnElement[bool]]
    serves_in: Callable[[str], ColumnElement[bool]]  # the model serves that environment


def catalogue_source(snapshot: Snapshot) -> Source:
    t = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name)

    def has_tag(tag: str) -> ColumnElement[bool]:
        return exists().where(t.tags.c.model_id == t.models.c.id, t.tags.c.tag == tag)

    def matches(words: list[str]) -> ColumnElement[bool]:
        """Every word, as a prefix, in name, description or tags."""
        if snapshot.conn.dialect.name == "postgresql":
            tsquery = " & ".join(f"{word}:*" for word in words)
            return t.models.c.search.op("@@")(func.to_tsquery("simple", tsquery))
        # FTS5 is a virtual table SQLAlchemy does not model: its MATCH in plain SQL.
        match = " AND ".join(f'"{word}"*' for word in words)
        hits = text(f"SELECT rowid FROM {t.fts_name} WHERE {t.fts_name} MATCH :fts_query")
        return t.models.c.row_number.in_(
            hits.bindparams(fts_query=match).columns(column("rowid", Integer))
        )

    def serves_in(environment: str) -> ColumnElement[bool]:
        # The row's deployments by environment (JSON): each dialect's key look-up.
        served: ColumnElement[bool] = t.models.c.deployments[environment].as_string().is_not(None)
        return served

    return Source(t.models, t.metrics, true(), true(), has_tag, matches, serves_in)


def timeline_moment(moment: datetime) -> str:
    """A time asked about, as the timeline's text; the last instant there is
    (where the timeline marks what still holds) means now."""
    return min(instant(moment), NOW)


def held_at(table: Table, as_of: str) -> ColumnElement[bool]:
    """A stretch recorded at or before ``as_of`` and not ended by then."""
    return and_(table.c.from_time <= as_of, table.c.to_time > as_of)


def like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def timeline_source(snapshot: Snapshot, as_of: str) -> Source:
    t = timeline_tables(snapshot.generation)

    def has_tag(tag: str) -> ColumnElement[bool]:
        pattern = f"%{TAG_SEPARATOR}{like_escaped(tag)}{TAG_SEPARATOR}%"
        return t.models.c.tags_key.like(pattern, escape="\\")

    def matches(words: list[str]) -> ColumnElement[bool]:
        """Every word as the start of a word (no full-text index reaches into the past)."""
        return and_(
            *(t.models.c.words.like(f"% {like_escaped(word)}%", escape="\\") for word in words)
        )

    def serves_in(environment: str) -> ColumnElement[bool]:
        pattern = f"%{TAG_SEPARATOR}{like_escaped(environment)}{TAG_SEPARATOR}%"
        return t.models.c.environments.like(pattern, escape="\\")

    valid_models, valid_metrics = held_at(t.models, as_of), held_at(t.metrics, as_of)
    return Source(t.models, t.metrics, valid_models, valid_metrics, has_tag, matches, serves_in)


def source_for(snapshot: Snapshot, as_of: str | None) -> Source:
    return catalogue_source(snapshot) if as_of is None else timeline_source(snapshot, as_of)


# Events carry the time their command was decided; they are committed (and
# numbered) a moment later, so an event of a time before T can still arrive
# after one of a later time. A minute is far beyond that moment.
SETTLED_AFTER = timedelta(minutes=1)
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def is_settled(snapshot: Snapshot, as_of: str) -> bool:
    """Whether the timeline holds every event recorded at or before ``as_of``: it has
    taken in an event a good while later, so the answer as of then is final."""
    t = timeline_tables(snapshot.generation)
    latest = snapshot.conn.execute(select(func.max(t.models.c.from_time))).scalar()
    if (
        latest is None
        or datetime.fromisoformat(as_of) >= datetime.max.replace(tzinfo=UTC) - SETTLED_AFTER
    ):
        return False  # (the end of time is never settled)
    horizon = datetime.fromisoformat(as_of) + SETTLED_AFTER
    return datetime.fromisoformat(latest) >= horizon
