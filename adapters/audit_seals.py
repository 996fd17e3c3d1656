"""Where seals of the event log are kept (write_model.integrity says what a seal is):
a table beside the read tables, written by ``modelledger audit seal``.

A seal in the same database can be rewritten by whoever rewrites the events; the
digest the command prints is worth keeping somewhere they cannot reach too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from write_model.integrity import Seal

SEALS_METADATA = MetaData()

audit_seals = Table(
    "audit_seals",
    SEALS_METADATA,
    Column("position", BigInteger, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("sealed_at", String(40), nullable=False),
)


def read_seals(engine: Engine) -> list[Seal]:
    if not inspect(engine).has_table(audit_seals.name):
        return []  # never sealed (and a read-only audit creates nothing)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_seals).order_by(audit_seals.c.position)).all()
    return [Seal(row.position, row.digest, row.sealed_at) for row in rows]


def record_seal(engine: Engine, position: int, digest: str) -> Seal:
    """A new seal, or the one already at that position (which was just verified)."""
    SEALS_METADATA.create_all(engine)
    seal = Seal(position, digest, datetime.now(UTC).isoformat())
    try:
        with engine.begin() as conn:
            conn.execute(insert(audit_seals).values(vars(seal)))
    except IntegrityError:  # sealed there already, by an earlier or a concurrent run
        with engine.connect() as conn:
            row = conn.execute(select(audit_seals).where(audit_seals.c.position == position)).one()
        return Seal(row.position, row.digest, row.sealed_at)
    return seal
