"""The relay's tracking row: the last log position it has seen acknowledged by Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select, update

from write_model.values import instant

RELAY_METADATA = MetaData()

relay_state = Table(
    "relay_state",
    RELAY_METADATA,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", String(40), nullable=False),
)


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


def relay_positions(conn: Connection) -> dict[str, int]:
    """Each relay's position; none before a relay first ran (its table may not exist)."""
    if not conn.dialect.has_table(conn, relay_state.name):
        return {}
    return {row.name: int(row.position) for row in conn.execute(select(relay_state))}
