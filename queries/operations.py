"""What operators read of the followers of the log: where each stands, and the open
provider jobs (for /health/detailed and /metrics)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from read_model.provider_jobs import provider_jobs
from read_model.relay import relay_state


def relay_positions(conn: Connection) -> dict[str, int]:
    """Each follower's position; none before one first ran (its table may not exist)."""
    if not conn.dialect.has_table(conn, relay_state.name):
        return {}
    return {row.name: int(row.position) for row in conn.execute(select(relay_state))}


def open_jobs(conn: Connection) -> list[dict[str, Any]]:
    """Every open provider job (health, and tests)."""
    if not conn.dialect.has_table(conn, provider_jobs.name):
        return []
    rows = conn.execute(select(provider_jobs).where(provider_jobs.c.state == "open")).all()
    return [dict(row._mapping) for row in rows]
