"""Where a follower of the log stands (read_model/relay.py defines the table): read once
at its start, moved after each batch it has carried out."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from read_model.relay import RELAY_METADATA, relay_state
from write_model.values import instant


def _now() -> str:
    return instant(datetime.now(UTC))


def relayed_position(conn: Connection, name: str) -> int:
    """Where the relay stands (0 before its first run); creates its row once."""
    RELAY_METADATA.create_all(conn, checkfirst=True)
    found = conn.execute(select(relay_state.c.position).where(relay_state.c.name == name)).first()
    if found is not None:
        return int(found[0])
    conn.execute(relay_state.insert().values(name=name, position=0, updated_at=_now()))
    return 0


def record_relayed(conn: Connection, name: str, position: int) -> None:
    conn.execute(
        update(relay_state)
        .where(relay_state.c.name == name)
        .values(position=position, updated_at=_now())
    )


def advance_relayed(conn: Connection, name: str, seen: int, position: int) -> bool:
    """Move from ``seen`` to ``position`` only if nobody moved it meanwhile: of two
    followers reading the same page, one wins and the other's transaction changes nothing."""
    moved = conn.execute(
        update(relay_state)
        .where(relay_state.c.name == name, relay_state.c.position == seen)
        .values(position=position, updated_at=_now())
    )
    return moved.rowcount == 1
