"""Seals of the event log: the digest of the log's hash chain at a position, with
when it was taken (``modelledger audit seal``). ``audit verify`` recomputes the
chain and checks every seal, so an event changed, removed or slipped in at or
before a sealed position is caught, even one that still decodes.

A seal in the same database can be rewritten by whoever rewrites the events; the
digest the command prints is worth keeping somewhere they cannot reach too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from eventsourcing.persistence import StoredEvent
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, insert, inspect, select
from sqlalchemy.exc import IntegrityError

SEALS_METADATA = MetaData()

audit_seals = Table(
    "audit_seals",
    SEALS_METADATA,
    Column("position", BigInteger, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("sealed_at", String(40), nullable=False),
)

GENESIS = bytes(32)  # the digest of an empty log


@dataclass(frozen=True)
class Seal:
    position: int
    digest: str
    sealed_at: str


def chained(previous: bytes, event: StoredEvent) -> bytes:
    """The chain's digest after one more event: what it is, never where it is
    stored, so a log exported and imported elsewhere has the same digests."""
    h = hashlib.sha256(previous)
    for part in (str(event.originator_id), str(event.originator_version), event.topic):
        encoded = part.encode()
        h.update(len(encoded).to_bytes(8, "big") + encoded)
    h.update(len(event.state).to_bytes(8, "big") + event.state)
    return h.digest()


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
