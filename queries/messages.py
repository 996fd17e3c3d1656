"""Query messages: what a caller may ask of the catalogue, validated at the edge."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from write_model.api_key import KEY_EVENT_TYPES
from write_model.ended_session import SESSION_EVENT_TYPES
from write_model.metric_definition import DEFINITION_EVENT_TYPES
from write_model.model import EVENT_TYPES
from write_model.values import WHITE_SPACE
from write_model.webhook import WEBHOOK_EVENT_TYPES


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it here, not with a driver error."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _filled(value: str) -> str:
    """A filter's value without the white space around it, and more than that."""
    value = _no_nul(value).strip()
    if not value:
        raise ValueError("must hold more than white space")
    return value


NoNul = AfterValidator(_no_nul)


def _more_than_white_space(value: str) -> str:
    _filled(value)  # (checked as filters are, but kept as sent)
    return value


# What the API's schema says of these values, as patterns every dialect reads alike.
NO_NUL = r"^[^\x00]*$"
FILLED = rf"^[^\x00]*[^\x00{WHITE_SPACE}][^\x00]*$"
# RFC 3339's date-time, which the schema's "format": "date-time" names: pydantic alone
# also reads a number as a Unix time, and a time without its seconds.
_DATE_TIME = re.compile(
    r"^(?P<year>[0-9]{4})-[0-9]{2}-[0-9]{2}[Tt]"  # the date
    r"[0-9]{2}:[0-9]{2}:(?P<second>[0-9]{2})(\.[0-9]+)?"  # the time
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"  # the zone
)
FIRST_TIME = datetime.min.replace(tzinfo=UTC)
LAST_TIME = datetime.max.replace(tzinfo=UTC)


def _rfc_3339(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or (found := _DATE_TIME.match(value)) is None:
        raise ValueError("must be an RFC 3339 time with a zone, e.g. 2026-01-31T12:00:00Z")
    if found["second"] == "60":  # a leap second: read as the second before it
        start, end = found.span("second")
        value = f"{value[:start]}59{value[end:]}"
    try:  # year 0 (RFC 3339 has one, Python not) read as 2000, a leap year as 0 is
        text = f"2000{value[4:]}" if found["year"] == "0000" else value
        moment = datetime.fromisoformat(text.upper())  # (3.11 reads no "z")
    except ValueError:
        raise ValueError("must be an RFC 3339 time with a zone") from None
    if found["second"] == "60" and not _ends_a_utc_day(moment):
        raise ValueError("a leap second (:60) ends a day in UTC (23:59:60Z)")
    return FIRST_TIME if found["year"] == "0000" else value  # year 0: before anything recorded


def _ends_a_utc_day(moment: datetime) -> bool:
    offset = moment.utcoffset()
    minutes = moment.hour * 60 + moment.minute - (offset.total_seconds() // 60 if offset else 0)
    return minutes % (24 * 60) == 24 * 60 - 1


def _in_utc(moment: datetime) -> datetime:
    """In UTC; a time whose UTC falls outside years 1-9999 (0001-01-01T00:00:00+05:00)
    is before or after anything recorded, as the first or last time there is."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return FIRST_TIME if moment.year == 1 else LAST_TIME


Moment = Annotated[AwareDatetime, BeforeValidator(_rfc_3339), AfterValidator(_in_utc)]
MAX_PAGE = 100
# A search must hold something to look for: a letter, digit or underscore, or any
# character beyond ASCII (and no NUL). The same rule is the pattern the API's schema
# documents, written so that every regular-expression dialect reads it alike (no \w,
# no \p{...}).
SEARCHABLE = r"^[^\x00]*([0-9A-Za-z_]|[^\x00-\x7f])[^\x00]*$"
_SEARCHABLE = re.compile(SEARCHABLE)


def _has_something_to_search_for(value: str) -> str:
    """Nothing but spaces, tabs or ASCII punctuation: say so, rather than answer with
    every model."""
    if _SEARCHABLE.search(value) is None:
        raise ValueError("must hold a word to search for (a letter or digit)")
    return value


# Filters are compared without the white space around them; the schema's lengths count
# what was sent.
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_filled),
    Field(json_schema_extra={"pattern": FILLED}),
]
# A model's name as it was registered: compared exactly (not stripped), as the write
# side keeps it.
ExactName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    NoNul,
    AfterValidator(_more_than_white_space),
    Field(json_schema_extra={"pattern": FILLED}),
]
Key = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_filled),
    AfterValidator(str.lower),
    Field(json_schema_extra={"pattern": FILLED}),
]
Metric = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    NoNul,
    Field(json_schema_extra={"pattern": NO_NUL}),
]
# Not stripped: the spaces around the words change nothing, and the schema's maxLength
# then counts what was sent.
Words = Annotated[
    str,
    StringConstraints(max_length=200),
    NoNul,
    AfterValidator(_has_something_to_search_for),
    Field(json_schema_extra={"pattern": SEARCHABLE}),
]
FACETS = ("task", "framework", "status", "project", "tags", "environment")


def facet_names(value: str) -> str:
    """``task,framework``: each a facet, none twice (the order asked is kept)."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or any(name not in FACETS for name in names):
        raise ValueError(f"must be a comma-separated list of {', '.join(FACETS)}")
    return ",".join(dict.fromkeys(names))


Facets = Annotated[str, StringConstraints(max_length=200), NoNul, AfterValidator(facet_names)]
Cursor = Annotated[
    str, StringConstraints(max_length=2000), NoNul, Field(json_schema_extra={"pattern": NO_NUL})
]
Position = Annotated[int, Field(ge=0, le=2**62)]


class Query(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_position: Position | None = Field(
        default=None,
        description="the answer reflects at least this log position: a read of the tables "
        "waits (bounded) for it, a read of the log never needs to; past the log's end, refused",
    )


class GetModel(Query):
    """One model as the catalogue holds it now."""

    model_id: UUID


class SearchModels(Query):
    q: Words | None = Field(
        default=None, description="words to find in name, description and tags (prefixes match)"
    )
    name: ExactName | None = Field(default=None, description="exactly this name")
    project: Text | None = None
    task: Key | None = None
    framework: Key | None = None
    status: Literal["created", "training", "trained", "deployed", "failed", "archived"] | None = (
        Field(default=None, description="archived models appear only when asked for")
    )
    tag: list[Text] = Field(default_factory=list, max_length=20, description="all must match")
    owner: Text | None = None
    environment: Key | None = Field(
        default=None, description="only models serving there (compared as deploy stores it)"
    )
    metric: Metric | None = None
    min_value: float | None = Field(default=None, allow_inf_nan=False)
    max_value: float | None = Field(default=None, allow_inf_nan=False)
    sort: Literal["name", "created_at", "updated_at", "metric"] = "name"
    order: Literal["asc", "desc"] | None = Field(
        default=None,
        description="default: name ascending, times newest first, metrics best first",
    )
    limit: int = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None
    as_of: Moment | None = Field(
        default=None, description="as the registry stood at this time (RFC 3339, with a zone)"
    )
    facets: Facets | None = Field(
        default=None,
        description="also count the models found by each value of these, comma-separated: "
        "task, framework, status, project, tags, environment",
    )


class ModelStatistics(Query):
    project: Text | None = None
    task: Key | None = None
    as_of: Moment | None = Field(
        default=None, description="as the registry stood at this time (RFC 3339, with a zone)"
    )


class TopPerforming(Query):
    metric: Metric
    task: Key | None = None
    project: Text | None = None
    limit: int = Field(default=10, ge=1, le=MAX_PAGE)
    order: Literal["asc", "desc"] | None = Field(
        default=None,
        description="default: by the metric's direction (ascending for a metric to minimise: "
        "see /api/v1/metric-definitions)",
    )
    as_of: Moment | None = Field(
        default=None, description="as the registry stood at this time (RFC 3339, with a zone)"
    )


EVENT_NAMES = frozenset(
    cls.__name__
    for cls in (
        *EVENT_TYPES,
        *DEFINITION_EVENT_TYPES,
        *KEY_EVENT_TYPES,
        *SESSION_EVENT_TYPES,
        *WEBHOOK_EVENT_TYPES,
    )
)


def _known_event_type(value: str) -> str:
    if value not in EVENT_NAMES:
        raise ValueError(f"unknown event type; one of {', '.join(sorted(EVENT_NAMES))}")
    return value


# Documented as an enum, so the API's schema says which names are accepted (a client
# or fuzzer reading it sends only those); the validator keeps the helpful message.
EventType = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_known_event_type),
    WithJsonSchema({"type": "string", "enum": sorted(EVENT_NAMES)}),
]
Actor = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    NoNul,
    Field(json_schema_extra={"pattern": NO_NUL}),
]


class ListEvents(BaseModel):
    """The global feed: events after a position, optionally filtered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after: Position = Field(default=0, description="only events after this log position")
    limit: int = Field(default=100, ge=1, le=1000)
    model_id: UUID | None = None
    type: list[EventType] = Field(
        default_factory=list, max_length=20, description="event types (any of them)"
    )
    actor: Actor | None = None
    since: Moment | None = Field(default=None, description="recorded at or after")
    until: Moment | None = Field(default=None, description="recorded at or before")
    min_position: Position | None = Field(
        default=None,
        description="the log holds every acknowledged change, so the feed never waits; "
        "a position past its end is refused",
    )


class ListHistory(Query):
    """One model's audit trail, a page at a time (the log holds every acknowledged
    change, so ``min_position`` never waits: past the log's end it is refused)."""

    after: Position = Field(default=0, description="only events after this log position")
    limit: int = Field(default=100, ge=1, le=1000)


class ListDeployments(Query):
    """What serves where: now, or as the registry stood at ``as_of``."""

    environment: Key | None = Field(
        default=None, description="compared case-insensitively, as deploy stores it (lower case)"
    )
    model_id: UUID | None = None
    as_of: Moment | None = Field(default=None, description="RFC 3339 time with a zone")
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Cursor | None = None
