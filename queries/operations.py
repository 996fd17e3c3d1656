"""What operators read of the followers of the log: where each stands, and the open
provider jobs (for /health/detailed and /metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from queries.reading import read_errors
from read_model.provider_jobs import provider_jobs
from read_model.relay import PROVIDER_INTAKE, WEBHOOK_DELIVERER, relay_state
from read_model.state import ProjectionState, read_states


@dataclass(frozen=True)
class Standing:
    """Where every follower of the log stands."""

    projections: dict[str, ProjectionState]
    relays: dict[str, int]  # what each relay has had acknowledged (Kafka)
    intake: int | None  # what the provider worker has taken in (None: it never ran)
    deliverer: int | None  # what the webhook deliverer has queued (None: it never ran)


def standing(engine: Engine) -> Standing:
    with read_errors(), engine.connect() as conn:
        followers = relay_positions(conn)
        intake = followers.pop(PROVIDER_INTAKE, None)
        deliverer = followers.pop(WEBHOOK_DELIVERER, None)
        return Standing(read_states(conn), followers, intake, deliverer)


def relay_positions(conn: Connection) -> dict[str, int]:
    """Each follower's position; none before one first ran (its table may not exist)."""
    if not conn.dialect.has_table(conn, relay_state.name):
        return {}
    return {row.name: int(row.position) for row in conn.execute(select(relay_state))}


def open_jobs(conn: Connection) -> list[dict[str, Any]]:
    """Every open provider job."""
    if not conn.dialect.has_table(conn, provider_jobs.name):
        return []
    rows = conn.execute(select(provider_jobs).where(provider_jobs.c.state == "open")).all()
    return [dict(row._mapping) for row in rows]


def jobs_open(engine: Engine) -> list[dict[str, Any]]:
    with read_errors(), engine.connect() as conn:
        return open_jobs(conn)
