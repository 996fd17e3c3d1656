"""The provider worker's jobs (read_model/provider_jobs.py defines their table): one per
training run or deployment request that a provider (OpenAI, Hugging Face) carries out.

Rows are taken in from the log (with the worker's position, in one transaction), so
a restarted worker finds every job still open. A lease on a row lets one worker at
a time call the provider about that job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from read_model.holders import holder_is_gone
from read_model.provider_jobs import JOBS_METADATA, provider_jobs
from read_model.state import ddl_one_at_a_time


@dataclass(frozen=True)
class ProviderJob:
    id: str
    model_id: str
    kind: str
    backend: str
    environment: str | None
    spec: dict[str, Any]
    provider_ref: str | None
    cause: str
    correlation_id: str
    checks: int
    opened_at: float


def ensure_jobs_table(conn: Connection) -> None:
    ddl_one_at_a_time(conn)
    JOBS_METADATA.create_all(conn, checkfirst=True)


def open_job(conn: Connection, row: dict[str, Any]) -> None:
    """Once per job, however often the log is read again."""
    values = {"state": "open", "checks": 0, "lease_until": 0.0, "provider_ref": None, **row}
    values["due_at"] = values["opened_at"]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(provider_jobs).values(values).on_conflict_do_nothing())


def note_provider_ref(conn: Connection, job_id: str, ref: str) -> None:
    conn.execute(update(provider_jobs).where(provider_jobs.c.id == job_id).values(provider_ref=ref))


def close_job(conn: Connection, job_id: str) -> None:
    conn.execute(
        update(provider_jobs)
        .where(provider_jobs.c.id == job_id)
        .values(state="done", lease_owner=None, lease_until=0.0)
    )


def cancel_or_close(conn: Connection, run_id: str) -> None:
    """A run failed by someone else: a provider job already started is cancelled first
    (the worker does it, then closes the row); one never started just closes."""
    conn.execute(
        update(provider_jobs)
        .where(
            provider_jobs.c.id == run_id,
            provider_jobs.c.state == "open",
            provider_jobs.c.provider_ref.is_not(None),
        )
        .values(kind="cancel", due_at=0.0, checks=0)
    )
    conn.execute(
        update(provider_jobs)
        .where(provider_jobs.c.id == run_id, provider_jobs.c.kind != "cancel")
        .values(state="done", lease_owner=None, lease_until=0.0)
    )


def close_environment(conn: Connection, model_id: str, environment: str) -> None:
    """A deployment outcome settles whatever request was open for that environment."""
    conn.execute(
        update(provider_jobs)
        .where(
            provider_jobs.c.model_id == model_id,
            provider_jobs.c.environment == environment,
            provider_jobs.c.state == "open",
        )
        .values(state="done", lease_owner=None, lease_until=0.0)
    )


def models_with_open_jobs(conn: Connection) -> set[str]:
    found = conn.scalars(
        select(provider_jobs.c.model_id).where(provider_jobs.c.state == "open").distinct()
    )
    return set(found)


def claim_due(conn: Connection, owner: str, now: float, lease: float, limit: int) -> list[str]:
    """Lease up to ``limit`` due jobs to ``owner``: each is then its alone until
    ``now + lease`` (a conditional update, so two workers never both win a row).
    A job whose holder is gone (its process ended, on this host) is free at once."""
    t = provider_jobs.c
    free = or_(t.lease_until < now, t.lease_owner == owner)
    due = and_(t.state == "open", t.due_at <= now)
    held = conn.scalars(select(t.lease_owner).where(due, ~free).distinct()).all()
    gone = [holder for holder in held if holder is not None and holder_is_gone(holder)]
    if gone:
        free = or_(free, t.lease_owner.in_(gone))
    due = and_(due, free)
    ids = conn.scalars(
        select(provider_jobs.c.id).where(due).order_by(provider_jobs.c.due_at).limit(limit)
    ).all()
    claimed = []
    for job_id in ids:
        won = conn.execute(
            update(provider_jobs)
            .where(provider_jobs.c.id == job_id, due)
            .values(lease_owner=owner, lease_until=now + lease)
        )
        if won.rowcount == 1:
            claimed.append(job_id)
    return claimed


def read_job(conn: Connection, job_id: str) -> ProviderJob | None:
    row = conn.execute(
        select(provider_jobs).where(provider_jobs.c.id == job_id, provider_jobs.c.state == "open")
    ).first()
    if row is None:
        return None
    return ProviderJob(
        id=row.id,
        model_id=row.model_id,
        kind=row.kind,
        backend=row.backend,
        environment=row.environment,
        spec=dict(row.spec),
        provider_ref=row.provider_ref,
        cause=row.cause,
        correlation_id=row.correlation_id,
        checks=row.checks,
        opened_at=row.opened_at,
    )


def check_again(
    conn: Connection, job_id: str, owner: str, due_at: float, error: str | None = None
) -> None:
    """Done with this step: free the lease, come back at ``due_at``."""
    conn.execute(
        update(provider_jobs)
        .where(provider_jobs.c.id == job_id, provider_jobs.c.lease_owner == owner)
        .values(
            checks=provider_jobs.c.checks + 1,
            due_at=due_at,
            lease_owner=None,
            lease_until=0.0,
            last_error=error,
        )
    )
