"""Search the catalogue: full text, filters, sort and keyset (cursor) pagination.

Pages are keyset pages on (sort key, id): a model written while a caller pages
moves only if its own sort key changes, so no other model is skipped or
repeated. The cursor is opaque (base64 of the last key) and bound to the
sort it was made for.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    literal,
    select,
    tuple_,
)

from queries.catalogue import SUMMARY_COLUMNS, summary_view
from queries.directions import directions_for
from queries.errors import InvalidQuery
from queries.facets import facet_counts
from queries.messages import SearchModels
from queries.reading import Snapshot
from queries.sources import Source, source_for
from queries.visibility import Projects, projects_in_view
from read_model.timeline import WORD

DEPLOYABLE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # the environments deploy accepts


def search_models(
    snapshot: Snapshot, query: SearchModels, as_of: str | None = None, visible: Projects = None
) -> dict[str, Any]:
    """The catalogue now, or (``as_of``) the timeline as it stood then."""
    if query.metric is None and query.sort == "metric":
        raise InvalidQuery("sort=metric needs the metric to sort by", field="metric")
    if query.metric is None and (query.min_value is not None or query.max_value is not None):
        raise InvalidQuery("min_value and max_value need the metric they bound", field="metric")
    source = source_for(snapshot, as_of)
    c = source.models
    directions = directions_for(snapshot, as_of)
    lower = directions.minimises(query.metric) if query.metric is not None else False
    descending = _descending(query, lower)
    # Only what a hit shows: the runs and versions are the bulk of a row.
    statement = select(*(c.c[name] for name in SUMMARY_COLUMNS)).where(
        source.valid_models, *_filters(source, query, visible)
    )
    if query.sort == "metric":
        assert query.metric is not None
        m = source.metrics
        value = m.c.min_value if lower else m.c.max_value
        joined = and_(m.c.model_id == c.c.id, m.c.metric == query.metric, source.valid_metrics)
        statement = statement.join(m, joined)
        statement = statement.add_columns(value.label("sort_value"))
        key: ColumnElement[Any] = value
    else:
        key = c.c[query.sort]
    if query.metric is not None and query.sort != "metric":
        statement = statement.where(_has_metric(source, query, lower))
    if query.cursor:
        last_key, last_id = _read_cursor(query, (descending, lower))
        after = tuple_(key, c.c.id)
        statement = statement.where(
            after < tuple_(literal(last_key), literal(last_id))
            if descending
            else after > tuple_(literal(last_key), literal(last_id))
        )
    ordering = (key.desc(), c.c.id.desc()) if descending else (key.asc(), c.c.id.asc())
    rows = snapshot.conn.execute(statement.order_by(*ordering).limit(query.limit + 1)).all()
    items = [summary_view(row, directions) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        last_key_value = last.sort_value if query.sort == "metric" else last._mapping[query.sort]
        next_cursor = _make_cursor(query, (descending, lower), last_key_value, last.id)
    answer: dict[str, Any] = {"items": items, "next_cursor": next_cursor}
    if query.facets:  # over every model the query finds, not only this page
        found = [source.valid_models, *_filters(source, query, visible)]
        if query.metric is not None:
            found.append(_has_metric(source, query, lower))
        answer["facets"] = facet_counts(snapshot, source, found, query.facets)
    return answer


def _descending(query: SearchModels, lower: bool) -> bool:
    """``lower``: the metric searched by is better as it falls."""
    if query.order is not None:
        return query.order == "desc"
    if query.sort == "metric":
        return not lower
    return query.sort in ("created_at", "updated_at")


def _filters(source: Source, query: SearchModels, visible: Projects) -> list[Any]:
    c = source.models.c
    where: list[Any] = []
    if query.status is None:
        where.append(c.archived.is_(False))
    else:
        where.append(c.status == query.status)
    projects = projects_in_view(query.project, visible)
    if projects is not None:
        where.append(c.project.in_(sorted(projects)))
    for name in ("name", "task", "framework", "owner"):
        value = getattr(query, name)
        if value is not None:
            where.append(c[name] == value)
    where += [source.has_tag(tag) for tag in query.tag]
    if query.environment is not None:  # (a name deploy refuses serves nowhere)
        known = DEPLOYABLE.match(query.environment)
        where.append(source.serves_in(query.environment) if known else false())
    if query.q:
        words = WORD.findall(query.q.lower())
        # q holds a word character or a non-ASCII one (queries.messages): one that is in
        # no word (a dash, an ideographic space) matches no model.
        where.append(source.matches(words) if words else false())
    return where


def _has_metric(source: Source, query: SearchModels, lower: bool) -> ColumnElement[bool]:
    """The model reports the metric, its best value within the bounds asked."""
    m = source.metrics
    assert query.metric is not None
    value = m.c.min_value if lower else m.c.max_value
    where = [m.c.model_id == source.models.c.id, m.c.metric == query.metric, source.valid_metrics]
    if query.min_value is not None:
        where.append(value >= query.min_value)
    if query.max_value is not None:
        where.append(value <= query.max_value)
    return exists().where(*where)


def _cursor_scope(query: SearchModels, descending: bool, lower: bool) -> list[Any]:
    """What a cursor is valid for: the sort, its order, and which of a model's values of
    the metric it compares (its lowest or highest: a metric redefined meanwhile changes
    it, and the cursor is then refused, not misread)."""
    side = ("min" if lower else "max") if query.metric is not None else None
    return [query.sort, "desc" if descending else "asc", query.metric, side]


def _make_cursor(query: SearchModels, scope: tuple[bool, bool], key: Any, model_id: str) -> str:
    raw = json.dumps([_cursor_scope(query, *scope), key, model_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(query: SearchModels, scope: tuple[bool, bool]) -> tuple[Any, str]:
    assert query.cursor is not None
    try:
        padded = query.cursor + "=" * (-len(query.cursor) % 4)
        found_scope, key, model_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, RecursionError, binascii.Error):
        raise InvalidQuery("cursor is not one this service gave out", field="cursor") from None
    if found_scope != _cursor_scope(query, *scope) or not isinstance(model_id, str):
        raise InvalidQuery(
            "cursor belongs to a different sort; start again without it", field="cursor"
        )
    # A forged key the sort column cannot be compared with would be a driver error.
    if query.sort == "metric" and type(key) in (int, float) and _finite(key):
        key = float(key)
    elif query.sort == "metric" or not isinstance(key, str) or "\x00" in key:
        raise InvalidQuery("cursor is not one this service gave out", field="cursor")
    if "\x00" in model_id:
        raise InvalidQuery("cursor is not one this service gave out", field="cursor")
    return key, model_id


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int too large for a float
        return False
