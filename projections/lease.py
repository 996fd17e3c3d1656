"""A projection's lease, in its state row: one worker writes each projection.

The holder renews it as it works; every batch it commits is guarded by
``WHERE owner = me``, so a worker that lost the lease writes nothing. A lease is
taken when it is free, has run out, or is held by a process that is gone (it
ran on this host and has ended: read_model/holders.py): a restart after a
crash resumes at once instead of waiting out the dead process's lease.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, or_, select, update

from projections.applying import now_text
from read_model.holders import holder_is_gone
from read_model.state import projection_state


class LeaseLost(Exception):
    """Another worker owns the projection now (or moved it): this batch is void."""


def take_lease(engine: Engine, name: str, owner: str, seconds: float) -> bool:
    """Take (or keep) the projection's lease for ``seconds``; False while another
    process that may be alive holds it."""
    now = time.time()
    t = projection_state.c
    free = or_(t.owner.is_(None), t.owner == owner, t.lease_until < now)
    with engine.begin() as conn:
        holder = conn.scalar(select(t.owner).where(t.name == name, ~free))
        if holder is not None and holder_is_gone(holder):
            # Only from that holder: a second process judging it gone too loses the race.
            free = or_(free, t.owner == holder)
        rows = conn.execute(
            update(projection_state)
            .where(t.name == name, free)
            .values(owner=owner, lease_until=now + seconds)
        ).rowcount
    return bool(rows == 1)


def release_lease(engine: Engine, name: str, owner: str) -> None:
    """Let it go (a clean stop): the next worker takes it at once."""
    t = projection_state.c
    with engine.begin() as conn:
        conn.execute(
            update(projection_state)
            .where(t.name == name, t.owner == owner)
            .values(owner=None, lease_until=None)
        )


def guarded_update(
    conn: Connection, name: str, owner: str, *where: ColumnElement[bool], **values: Any
) -> None:
    """Change the projection's state row only while ``owner`` holds the lease (and
    ``where`` holds): else another worker has it, and this change is void."""
    t = projection_state.c
    rows = conn.execute(
        update(projection_state)
        .where(t.name == name, t.owner == owner, *where)
        .values(updated_at=now_text(), **values)
    ).rowcount
    if rows != 1:
        raise LeaseLost(name)
