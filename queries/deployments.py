"""Deployments now or at a past time, from the deployments projection's stretches.

A stretch served from ``from_time`` until ``to_time`` (NULL: still serving), so
what served at T is every stretch with from_time <= T < to_time. Times are the
fixed-width UTC texts of ``instant``, which compare as the instants do. An
answer as of T reflects the log up to the answer's position (``X-Position``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from sqlalchemy import Select, Table, and_, or_, select, tuple_

from queries.errors import InvalidQuery
from queries.messages import ListDeployments
from queries.reading import Snapshot
from read_model.tables import deployments_table


def serving_at(table: Table, as_of: str) -> Any:
    return and_(table.c.from_time <= as_of, or_(table.c.to_time.is_(None), table.c.to_time > as_of))


def stretch_view(row: Any, as_of: str | None = None) -> dict[str, Any]:
    """One stretch; seen from ``as_of``, an end after that time had not happened yet."""
    ended = row.to_time is not None and (as_of is None or row.to_time <= as_of)
    return {
        "environment": row.environment,
        "model_version": row.model_version,
        "endpoint_url": row.endpoint_url,
        "action": row.action,
        "deployed_by": row.deployed_by,
        "from_position": row.from_position,
        "from_time": row.from_time,
        "to_position": row.to_position if ended else None,
        "to_time": row.to_time if ended else None,
        "ended_by": row.ended_by if ended else None,
    }


def model_deployments(
    snapshot: Snapshot, model_id: UUID, as_of: str | None = None
) -> dict[str, Any]:
    """What each environment serves (now, or at ``as_of``), and every stretch before."""
    table = deployments_table(snapshot.generation)
    statement = select(table).where(table.c.model_id == str(model_id))
    if as_of is not None:
        statement = statement.where(table.c.from_time <= as_of)
    rows = snapshot.conn.execute(
        statement.order_by(table.c.environment, table.c.from_position)
    ).all()
    return deployments_view([stretch_view(row, as_of) for row in rows])


def deployments_view(history: list[dict[str, Any]]) -> dict[str, Any]:
    """A model's stretches (by environment, then oldest first) as its deployments' answer:
    what serves in each environment, and the whole history."""
    current = {item["environment"]: item for item in history if item["to_position"] is None}
    return {"current": current, "history": history}


def deployed(
    snapshot: Snapshot,
    query: ListDeployments,
    as_of: str | None,
    shows: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Every model serving an environment, now or at ``as_of``, by environment and model.

    ``shows`` (a model id -> may the caller see it) filters the rows as they are read
    (the table has no project): reading goes on until the page is full or the rows
    end, and the cursor is always a row the caller may see."""
    table = deployments_table(snapshot.generation)
    statement: Select[Any] = select(table).where(
        serving_at(table, as_of) if as_of is not None else table.c.to_position.is_(None)
    )
    if query.environment is not None:
        statement = statement.where(table.c.environment == query.environment)
    if query.model_id is not None:
        statement = statement.where(table.c.model_id == str(query.model_id))
    statement = statement.order_by(table.c.environment, table.c.model_id).limit(query.limit + 1)
    after = _read_cursor(query.cursor) if query.cursor is not None else None
    kept: list[Any] = []
    while True:
        page = statement
        if after is not None:
            page = page.where(tuple_(table.c.environment, table.c.model_id) > tuple_(*after))
        rows = snapshot.conn.execute(page).all()
        kept += [row for row in rows if shows is None or shows(row.model_id)]
        if len(kept) > query.limit or len(rows) <= query.limit:
            break
        after = (rows[-1].environment, rows[-1].model_id)
    next_cursor = None
    if len(kept) > query.limit:
        kept = kept[: query.limit]
        next_cursor = _make_cursor(kept[-1].environment, kept[-1].model_id)
    items = [{"model_id": row.model_id, **stretch_view(row, as_of)} for row in kept]
    return {"as_of": as_of, "items": items, "next_cursor": next_cursor}


def _make_cursor(environment: str, model_id: str) -> str:
    raw = json.dumps([environment, model_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        environment, model_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, RecursionError, binascii.Error):
        raise InvalidQuery("cursor is not one this service gave out", field="cursor") from None
    if not all(isinstance(x, str) and "\x00" not in x for x in (environment, model_id)):
        raise InvalidQuery("cursor is not one this service gave out", field="cursor")
    return environment, model_id
