"""Query messages: what a caller may ask of the catalogue, validated at the edge."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from write_model.api_key import KEY_EVENT_TYPES
from write_model.model import EVENT_TYPES


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it here, not with a driver error."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
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


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Key = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64),
    NoNul,
]
Metric = Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]
# Not stripped: the spaces around the words change nothing, and the schema's maxLength
# then counts what was sent.
Words = Annotated[
    str,
    StringConstraints(max_length=200),
    NoNul,
    AfterValidator(_has_something_to_search_for),
    Field(json_schema_extra={"pattern": SEARCHABLE}),
]
Cursor = Annotated[str, StringConstraints(max_length=2000), NoNul]
Position = Annotated[int, Field(ge=0, le=2**62)]


class Query(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_position: Position | None = Field(
        default=None, description="wait (bounded) until the answer includes this position"
    )


class GetModel(Query):
    """One model as the catalogue holds it now."""

    model_id: UUID


class SearchModels(Query):
    q: Words | None = Field(
        default=None, description="words to find in name, description and tags (prefixes match)"
    )
    project: Text | None = None
    task: Key | None = None
    framework: Key | None = None
    status: Literal["created", "training", "trained", "deployed", "failed", "archived"] | None = (
        Field(default=None, description="archived models appear only when asked for")
    )
    tag: list[Text] = Field(default_factory=list, max_length=20, description="all must match")
    owner: Text | None = None
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
    as_of: AwareDatetime | None = Field(
        default=None, description="as the registry stood at this time (ISO 8601 with a zone)"
    )


class ModelStatistics(Query):
    project: Text | None = None
    task: Key | None = None
    as_of: AwareDatetime | None = Field(
        default=None, description="as the registry stood at this time (ISO 8601 with a zone)"
    )


class TopPerforming(Query):
    metric: Metric
    task: Key | None = None
    project: Text | None = None
    limit: int = Field(default=10, ge=1, le=MAX_PAGE)
    order: Literal["asc", "desc"] | None = Field(
        default=None, description="default: ascending for lower-is-better metrics (loss...)"
    )
    as_of: AwareDatetime | None = Field(
        default=None, description="as the registry stood at this time (ISO 8601 with a zone)"
    )


EVENT_NAMES = frozenset(cls.__name__ for cls in (*EVENT_TYPES, *KEY_EVENT_TYPES))


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
Actor = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]


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
    since: AwareDatetime | None = Field(default=None, description="recorded at or after")
    until: AwareDatetime | None = Field(default=None, description="recorded at or before")


class ListDeployments(Query):
    """What serves where: now, or as the registry stood at ``as_of``."""

    environment: Key | None = Field(
        default=None, description="compared case-insensitively, as deploy stores it (lower case)"
    )
    model_id: UUID | None = None
    as_of: AwareDatetime | None = Field(default=None, description="ISO 8601 time with a zone")
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Cursor | None = None
