"""The admins' view of webhooks: the subscriptions (the webhooks projection), and each
one's deliveries with their attempts (the deliverer's own tables)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from queries.operations import relay_positions
from queries.ports import EventLog
from queries.tables import ReadTables
from read_model.relay import WEBHOOK_DELIVERER
from read_model.webhooks import (
    HELD,
    WEBHOOKS_VERSION,
    webhook_attempts,
    webhook_deliveries,
    webhooks_table,
)
from write_model.values import instant
from write_model.webhook import Webhook

D, A = webhook_deliveries, webhook_attempts


def webhook_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.webhook_id,
        "url": row.url,
        "event_types": row.event_types,
        "projects": row.projects,
        "description": row.description,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason or None,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
        "secret_rotated_at": row.secret_rotated_at,
        "previous_secret_until": row.previous_secret_until,
    }


def webhook_from_log(event_log: EventLog, webhook_id: UUID) -> dict[str, Any] | None:
    """The subscription as its own events tell it (what ``webhook_view`` shows of the
    projection's row), for an answer that must hold a change just made."""
    view: dict[str, Any] | None = None
    for _, event in event_log.history(webhook_id):
        if isinstance(event, Webhook.WebhookCreated):
            view = {
                "id": str(webhook_id),
                "url": event.url,
                "event_types": event.event_types,
                "projects": event.projects,
                "description": event.description,
                "enabled": True,
                "disabled_reason": None,
                "created_at": event.when,
                "created_by": event.actor,
                "secret_rotated_at": None,
                "previous_secret_until": None,
            }
        elif view is None or isinstance(event, Webhook.WebhookDeleted):
            return None
        elif isinstance(event, Webhook.WebhookUpdated):
            view |= event.changes
        elif isinstance(event, Webhook.WebhookSecretRotated):
            until = instant(event.previous_until)
            view |= {"secret_rotated_at": event.when, "previous_secret_until": until}
        elif isinstance(event, Webhook.WebhookEnabled | Webhook.WebhookDisabled):
            reason = getattr(event, "reason", None)
            view |= {"enabled": reason is None, "disabled_reason": reason or None}
        if view is not None:
            view["updated_at"] = event.when
    return view


def list_webhooks(tables: ReadTables, min_position: int | None) -> tuple[list[Any], int]:
    with tables.reading("webhooks", WEBHOOKS_VERSION, min_position) as snapshot:
        table = webhooks_table(snapshot.generation)
        rows = snapshot.conn.execute(select(table).order_by(table.c.created_at))
        return [webhook_view(row) for row in rows], snapshot.position


def _moment(seconds: float | None) -> str | None:
    return instant(datetime.fromtimestamp(seconds, UTC)) if seconds is not None else None


def delivery_view(row: Any, attempts: list[Any]) -> dict[str, Any]:
    pending = row.state == "pending"
    return {
        "id": row.delivery_id,
        "message_id": row.message_id,
        "kind": row.kind,
        "event_type": row.event_type,
        "position": row.position,
        "state": row.state,
        "created_at": _moment(row.created_at),
        # null while pending: held until its subscription is enabled again
        "next_attempt_at": _moment(row.due_at) if pending and row.due_at < HELD else None,
        "finished_at": _moment(row.finished_at),
        "attempts": [
            {
                "at": _moment(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response": a.response,
            }
            for a in attempts
        ],
    }


def deliveries_page(
    conn: Connection, webhook_id: str, *, before: int | None, limit: int
) -> dict[str, Any]:
    """Newest first; ``next_before`` goes on to older ones."""
    query = select(D).where(D.c.webhook_id == webhook_id)
    if before is not None:
        query = query.where(D.c.seq < before)
    rows = list(conn.execute(query.order_by(D.c.seq.desc()).limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    tried: dict[str, list[Any]] = {row.delivery_id: [] for row in rows}
    if tried:
        found = conn.execute(select(A).where(A.c.delivery_id.in_(list(tried))).order_by(A.c.id))
        for attempt in found:
            tried[attempt.delivery_id].append(attempt)
    items = [delivery_view(row, tried[row.delivery_id]) for row in rows]
    return {"items": items, "next_before": rows[-1].seq if more else None}


def one_delivery(conn: Connection, delivery_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(D).where(D.c.delivery_id == delivery_id)).first()
    if row is None:
        return None
    attempts = conn.execute(select(A).where(A.c.delivery_id == delivery_id).order_by(A.c.id))
    return delivery_view(row, list(attempts))


def delivery_health(conn: Connection) -> dict[str, Any]:
    """For /metrics and /health/detailed: deliveries waiting (held ones, of disabled
    subscriptions, apart), those failing (tried at least once), and how long the oldest
    has waited."""
    waiting = (D.c.state == "pending", D.c.due_at < HELD)
    pending = conn.execute(select(func.count(), func.min(D.c.created_at)).where(*waiting)).first()
    failing = conn.execute(select(func.count()).where(*waiting, D.c.attempts > 0)).scalar()
    held = conn.execute(
        select(func.count()).where(D.c.state == "pending", D.c.due_at >= HELD)
    ).scalar()
    count, oldest = (pending[0], pending[1]) if pending is not None else (0, None)
    return {
        "pending": int(count or 0),
        "failing": int(failing or 0),
        "held": int(held or 0),
        "oldest_pending_seconds": max(0.0, time.time() - oldest) if oldest else 0.0,
    }


def webhook_standing(tables: ReadTables, head: int) -> dict[str, Any]:
    """How the deliveries go: the deliverer's lag behind the log (None: it never ran),
    the subscriptions (and how many are disabled), and the deliveries waiting."""
    with tables.reading("webhooks", WEBHOOKS_VERSION) as snapshot:
        conn, table = snapshot.conn, webhooks_table(snapshot.generation)
        counted = conn.execute(
            select(func.count(), func.count().filter(table.c.enabled.is_(False)))
        ).first()
        queued = relay_positions(conn).get(WEBHOOK_DELIVERER)
        has_queue = conn.dialect.has_table(conn, D.name)
        health = delivery_health(conn) if has_queue else dict.fromkeys(HEALTH_KEYS, 0)
    return {
        "deliverer_lag": max(0, head - queued) if queued is not None else None,
        "subscriptions": int(counted[0]) if counted else 0,
        "disabled": int(counted[1]) if counted else 0,
        **health,
    }


HEALTH_KEYS = ("pending", "failing", "held", "oldest_pending_seconds")
