"""Each projection's state row: its version, serving generation, tracked position,
rebuild progress, failure and the worker lease.

The row changes in the same transaction as the projection's read rows, which is
what makes a projection exactly-once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

STATE_METADATA = MetaData()

projection_state = Table(
    "projection_state",
    STATE_METADATA,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("rebuild_generation", Integer),
    Column("rebuild_position", BigInteger),
    Column("rebuild_requested", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("error_position", BigInteger),
    Column("owner", String(120)),
    Column("lease_until", Float),
    Column("updated_at", String(40), nullable=False),
)


@dataclass(frozen=True)
class ProjectionState:
    name: str
    version: int
    generation: int
    position: int
    rebuild_generation: int | None
    rebuild_position: int | None
    rebuild_requested: bool
    status: str
    error: str | None
    error_position: int | None
    owner: str | None
    lease_until: float | None
    updated_at: str


def read_state(conn: Connection, name: str) -> ProjectionState | None:
    row = conn.execute(select(projection_state).where(projection_state.c.name == name)).first()
    return ProjectionState(**row._mapping) if row is not None else None


def read_states(conn: Connection) -> dict[str, ProjectionState]:
    rows = conn.execute(select(projection_state)).all()
    return {row.name: ProjectionState(**row._mapping) for row in rows}


# Any constant: the key of the lock that serialises the read side's DDL.
DDL_LOCK_KEY = 0x6D6C6564


def ddl_one_at_a_time(conn: Connection) -> None:
    """Processes starting together create tables one after the other: two
    concurrent CREATE TABLEs of one name fail on PostgreSQL (duplicate pg_type)
    even with the existence check (SQLite's BEGIN IMMEDIATE serialises already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(DDL_LOCK_KEY)))
