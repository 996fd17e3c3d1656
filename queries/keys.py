"""The admins' list of keys: names, roles, scopes, who issued and revoked them."""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic
from sqlalchemy import select

from queries.answers import Answer
from queries.ports import EventLog
from queries.reading import Snapshot
from queries.tables import ReadTables
from read_model.encoding import json_bytes
from read_model.keys import KEYS_VERSION, keys_table
from write_model.api_key import ApiKey


def key_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.key_id,
        "name": row.name,
        "role": row.role,
        "projects": row.projects,
        "issued_at": row.issued_at,
        "issued_by": row.issued_by,
        "revoked_at": row.revoked_at,
        "revoked_by": row.revoked_by,
        "active": row.revoked_at is None,
    }


def list_keys(snapshot: Snapshot, *, include_revoked: bool) -> list[dict[str, Any]]:
    table = keys_table(snapshot.generation)
    query = select(table).order_by(table.c.name, table.c.issued_at)
    if not include_revoked:
        query = query.where(table.c.revoked_at.is_(None))
    return [key_view(row) for row in snapshot.conn.execute(query)]


def keys_from_log(event_log: EventLog) -> list[dict[str, Any]]:
    """Every key, straight from the log (for the CLI, which runs no projections:
    a scan of the log by topic, fine for an operator's occasional look)."""
    topics = [get_topic(ApiKey.KeyIssued), get_topic(ApiKey.KeyRevoked)]
    views: dict[str, dict[str, Any]] = {}
    after = 0
    while page := event_log.page(after, 1000, topics=topics):
        for notification in page:
            _fold(views, event_log.decode(notification))
        after = page[-1].id
    return sorted(views.values(), key=lambda view: (view["name"], view["issued_at"]))


def _fold(views: dict[str, dict[str, Any]], event: Any) -> None:
    key_id = str(event.originator_id)
    if isinstance(event, ApiKey.KeyIssued):
        views[key_id] = {
            "id": key_id,
            "name": event.name,
            "role": event.role,
            "projects": event.projects,
            "issued_at": event.when,
            "issued_by": event.actor,
            "revoked_at": None,
            "revoked_by": None,
            "active": True,
        }
    elif key_id in views:
        views[key_id] |= {"revoked_at": event.when, "revoked_by": event.actor, "active": False}


def keys_answer(tables: ReadTables, *, include_revoked: bool, min_position: int | None) -> Answer:
    """Every key (and the revoked, if asked), from the keys projection."""
    with tables.reading("keys", KEYS_VERSION, min_position) as snapshot:
        items = list_keys(snapshot, include_revoked=include_revoked)
        return Answer(json_bytes({"items": items}), snapshot.position)
