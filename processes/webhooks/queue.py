"""The deliverer's queue (read_model/webhooks.py defines its tables): the SQL that
writes it. Rows are queued from the log with the deliverer's position, in one
transaction (exactly once); each is then sent under a lease, one at a time per
subscription and queue (a model), oldest first.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    case,
    delete,
    exists,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import aliased

from commands.ports import EndpointAnswer
from read_model.state import ddl_one_at_a_time
from read_model.webhooks import (
    DELIVERIES_METADATA,
    HELD,
    RESPONSE_KEPT,
    webhook_attempts,
    webhook_deliveries,
    webhook_replays,
)

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
D = webhook_deliveries


@dataclass(frozen=True)
class Due:
    """A delivery to send now: the head of its queue."""

    seq: int
    delivery_id: str
    message_id: str
    webhook_id: str
    kind: str
    body: bytes
    attempts: int
    created_at: float


def ensure_delivery_tables(conn: Connection) -> None:
    ddl_one_at_a_time(conn)
    DELIVERIES_METADATA.create_all(conn, checkfirst=True)


def ensure_webhook_queue(engine: Engine) -> None:
    with engine.begin() as conn:
        ensure_delivery_tables(conn)


def new_delivery_id() -> str:
    return secrets.token_hex(16)


def delivery_row(
    *,
    message_id: str,
    webhook_id: str,
    queue: str,
    position: int | None,
    kind: str,
    event_type: str,
    body: bytes,
    now: float,
    first_wait: float = 0.0,
) -> dict[str, Any]:
    return {
        "delivery_id": new_delivery_id(),
        "message_id": message_id,
        "webhook_id": webhook_id,
        "queue": queue,
        "position": position,
        "kind": kind,
        "event_type": event_type,
        "body": body.decode(),
        "state": PENDING,
        "attempts": 0,
        "due_at": now + first_wait,
        "created_at": now,
    }


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(D.insert(), list(rows))


def due_heads(
    conn: Connection,
    webhook_ids: Iterable[str],
    now: float,
    limit: int,
    gone: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The first pending delivery of each queue, if due (and tests), for these
    subscriptions, that no live deliverer holds: unleased, its lease run out, or held by
    one of the ``gone`` deliverers (processes of this machine that have ended)."""
    earlier = aliased(D)
    first_of_queue = ~exists().where(
        earlier.c.webhook_id == D.c.webhook_id,
        earlier.c.queue == D.c.queue,
        earlier.c.state == PENDING,
        earlier.c.seq < D.c.seq,
    )
    query = (
        select(D)
        .where(
            D.c.state == PENDING,
            D.c.due_at <= now,
            or_(D.c.webhook_id.in_(list(webhook_ids)), D.c.kind == "test"),
            or_(D.c.leased_by.is_(None), D.c.leased_until <= now, D.c.leased_by.in_(list(gone))),
            first_of_queue,
        )
        .order_by(D.c.due_at)  # (the index's order: the scan stops at the limit)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def lease_holders(conn: Connection, now: float) -> list[str]:
    """Who holds a lease in force on a delivery (to find those whose process ended)."""
    query = select(D.c.leased_by).distinct().where(D.c.state == PENDING, D.c.leased_until > now)
    return [holder for (holder,) in conn.execute(query) if holder]


def claim(
    conn: Connection, rows: Sequence[dict[str, Any]], owner: str, now: float, lease: float
) -> list[Due]:
    """Lease these deliveries, but none another live deliverer holds (a lease whose
    holder is gone, or has run out, is taken over)."""
    free = [row["seq"] for row in rows if row["leased_by"] is None]
    taken: set[int] = set()
    if free:
        found = conn.execute(
            update(D)
            .where(D.c.seq.in_(free), D.c.state == PENDING, D.c.leased_by.is_(None))
            .values(leased_by=owner, leased_until=now + lease)
            .returning(D.c.seq)
        )
        taken |= {seq for (seq,) in found}
    for row in rows:  # (rare: a restart, a deliverer that died: due_heads chose them)
        held = row["leased_by"]
        if held is None:
            continue
        moved = conn.execute(
            update(D)
            .where(D.c.seq == row["seq"], D.c.state == PENDING, D.c.leased_by == held)
            .values(leased_by=owner, leased_until=now + lease)
        )
        if moved.rowcount == 1:
            taken.add(row["seq"])
    return [_due(row) for row in rows if row["seq"] in taken]


def _due(row: dict[str, Any]) -> Due:
    return Due(
        row["seq"],
        row["delivery_id"],
        row["message_id"],
        row["webhook_id"],
        row["kind"],
        row["body"].encode(),
        row["attempts"],
        row["created_at"],
    )


def attempt_row(due: Due, answer: EndpointAnswer, at: float) -> dict[str, Any]:
    return {
        "delivery_id": due.delivery_id,
        "at": at,
        "status_code": answer.status,
        "latency_ms": answer.latency_ms,
        "error": (answer.error or None) and answer.error[:500],
        "response": answer.excerpt[:RESPONSE_KEPT],
    }


def record(
    conn: Connection,
    owner: str,
    attempts: Sequence[dict[str, Any]],
    changes: Sequence[dict[str, Any]],
) -> None:
    """The attempts made, and what they changed: each delivery's ``state``, ``attempts``,
    ``due_at`` and ``finished_at`` (its lease ends). Only while ``owner`` still holds it
    (a deletion may have cancelled it, another deliverer taken it over), and a delivery
    held meanwhile (its subscription disabled) stays held."""
    if attempts:
        conn.execute(webhook_attempts.insert(), list(attempts))
    if changes:
        conn.execute(
            update(D)
            .where(D.c.seq == bindparam("b_seq"), D.c.state == PENDING, D.c.leased_by == owner)
            .values(
                state=bindparam("b_state"),
                attempts=bindparam("b_attempts"),
                due_at=case((D.c.due_at >= HELD, D.c.due_at), else_=bindparam("b_due_at")),
                finished_at=bindparam("b_finished_at"),
                leased_by=None,
                leased_until=None,
            ),
            [{f"b_{k}": v for k, v in change.items()} for change in changes],
        )


def hold_all(conn: Connection, webhook_id: str) -> None:
    """A disabled subscription's deliveries wait, out of the due scan's way, until it is
    enabled again."""
    conn.execute(
        update(D).where(D.c.webhook_id == webhook_id, D.c.state == PENDING).values(due_at=HELD)
    )


def start_again(conn: Connection, webhook_id: str, now: float) -> None:
    """A subscription enabled again: its held deliveries go at once, on a new schedule."""
    conn.execute(
        update(D)
        .where(D.c.webhook_id == webhook_id, D.c.state == PENDING)
        .values(attempts=0, due_at=now)
    )


def cancel_all(conn: Connection, webhook_id: str, now: float) -> None:
    """A deleted subscription's deliveries and replays end."""
    conn.execute(
        update(D)
        .where(D.c.webhook_id == webhook_id, D.c.state == PENDING)
        .values(state=CANCELLED, finished_at=now, leased_by=None, leased_until=None)
    )
    conn.execute(delete(webhook_replays).where(webhook_replays.c.webhook_id == webhook_id))


def refresh_statistics(conn: Connection) -> None:
    """What autovacuum does after many changes (it may be off, or late after a burst):
    without fresh statistics PostgreSQL's planner reads every due row to find the first
    few, instead of walking the due index (docs/benchmarks.md)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {D.name}"))


def purge(conn: Connection, before: float) -> int:
    """Forget finished deliveries (and their attempts) older than ``before``."""
    old = select(D.c.delivery_id).where(D.c.state != PENDING, D.c.finished_at < before)
    conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(old)))
    gone = conn.execute(delete(D).where(D.c.state != PENDING, D.c.finished_at < before))
    return int(gone.rowcount or 0)


def open_replays(conn: Connection) -> list[dict[str, Any]]:
    query = select(webhook_replays).order_by(webhook_replays.c.created_at)
    return [dict(row._mapping) for row in conn.execute(query)]


def advance_replay(conn: Connection, replay_id: str, seen: int, cursor: int, done: bool) -> bool:
    """Move the replay from ``seen`` to ``cursor`` (or end it), unless another deliverer
    did first: then False, and the caller's transaction must not commit."""
    table = webhook_replays
    mine = (table.c.replay_id == replay_id, table.c.cursor == seen)
    if done:
        moved = conn.execute(delete(table).where(*mine))
    else:
        moved = conn.execute(update(table).where(*mine).values(cursor=cursor))
    return moved.rowcount == 1
