"""Who may take a lease: a holder that ran on this host and whose process has ended
(its pid gone, or now another process's) loses its lease at once; a holder that may
still be alive (it is running, it ran on another host or in another pid namespace,
or its name is of the older kind) keeps it until it runs out.

Holders are real processes started and ended here. Projection leases and provider job
leases follow the same rule, on SQLite and on PostgreSQL (``store_url``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from modelledger.bootstrap import Ledger
from processes import provider_jobs as jobs
from projections.applying import ensure_projection
from projections.catalogue import CatalogueProjection
from projections.runner import ProjectionRunner, RunnerOptions
from read_model.holders import holder_identity, parse_holder
from read_model.provider_jobs import provider_jobs
from read_model.state import projection_state, read_state
from tests.support.ledgers import make_ledger

AN_HOUR = 3600.0
PRINT_IDENTITY = (
    "from read_model.holders import holder_identity; print(holder_identity(), flush=True)"
)


@dataclass(frozen=True)
class Holders:
    """Owner names, each for a case of the rule."""

    ended: str  # a process of this host that has exited
    running: str  # a process of this host still running
    restarted_pid: str  # the running process's pid, with another start time (a reused pid)
    elsewhere: str  # the ended process's name, as if from another host
    other_namespace: str  # ... from another pid namespace of this host (a container)
    other_machine: str  # ... from another machine with the same host name
    older_kind: str  # ``host:pid:random``, as earlier versions named holders


@pytest.fixture(scope="module")
def holders() -> Iterator[Holders]:
    ended = subprocess.run(
        [sys.executable, "-c", PRINT_IDENTITY], capture_output=True, text=True, check=True
    ).stdout.strip()  # run() has waited for it: the pid is gone
    running = subprocess.Popen(
        [sys.executable, "-c", f"{PRINT_IDENTITY}; import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert running.stdout is not None
    alive = running.stdout.readline().strip()
    holder = parse_holder(alive)
    assert holder is not None and holder.start is not None
    try:
        yield Holders(
            ended=ended,
            running=alive,
            restarted_pid=alive.replace(
                f"start={holder.start:.2f}", f"start={holder.start - 60:.2f}"
            ),
            elsewhere=f"another-host{ended[ended.index(':') :]}",
            other_namespace=f"{ended.rsplit(';ns=', 1)[0]};ns=1",
            other_machine=re.sub(r";boot=[0-9a-f]+", ";boot=0123456789ab", ended),
            older_kind=ended.split(";")[0],
        )
    finally:
        running.communicate(input="")


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    built = make_ledger(store_url, projections=False)
    ensure_projection(built.write_engine, CatalogueProjection)
    with built.write_engine.begin() as conn:
        jobs.ensure_jobs_table(conn)
    yield built
    built.close()


def catalogue_held_by(ledger: Ledger, owner: str, lease_until: float) -> None:
    with ledger.write_engine.begin() as conn:
        conn.execute(
            update(projection_state)
            .where(projection_state.c.name == CatalogueProjection.name)
            .values(owner=owner, lease_until=lease_until)
        )


def catalogue_holder(ledger: Ledger) -> str | None:
    with ledger.read_engine.connect() as conn:
        state = read_state(conn, CatalogueProjection.name)
    assert state is not None
    return state.owner


def a_worker_asks(ledger: Ledger) -> bool:
    """A projection worker of this process takes one step: does it hold the catalogue?"""
    me = holder_identity()
    options = RunnerOptions(lease_seconds=10.0, retry_seconds=0.0)
    runner = ProjectionRunner(
        CatalogueProjection, ledger.write_engine, ledger.event_log, me, options
    )
    runner.stopping.set()  # one step, no waiting between steps
    runner.step_safely()
    assert runner.last_error is None, runner.last_error
    assert runner.holds_lease == (catalogue_holder(ledger) == me)
    return runner.holds_lease


def test_a_projection_held_by_an_ended_process_of_this_host_is_taken_at_once(
    ledger: Ledger, holders: Holders
) -> None:
    for gone in (holders.ended, holders.restarted_pid):
        # Given the catalogue held for another hour by a process that has ended here
        # (or whose pid is now another process's)
        catalogue_held_by(ledger, gone, time.time() + AN_HOUR)
        # When a worker asks for it, then it is its at once
        assert a_worker_asks(ledger), gone


def test_a_projection_held_by_a_process_that_may_be_alive_waits_for_its_lease_to_run_out(
    ledger: Ledger, holders: Holders
) -> None:
    maybe_alive = (
        holders.running,
        holders.elsewhere,
        holders.other_namespace,
        holders.other_machine,
        holders.older_kind,
        "a-worker-named-by-hand",
    )
    for holder in maybe_alive:
        # Given the catalogue held for another hour by a holder that may be alive
        catalogue_held_by(ledger, holder, time.time() + AN_HOUR)
        # When a worker asks for it, then it is refused, and the holder keeps it
        assert not a_worker_asks(ledger), holder
        assert catalogue_holder(ledger) == holder
        # When that lease has run out, then the worker takes it
        catalogue_held_by(ledger, holder, time.time() - 1)
        assert a_worker_asks(ledger), holder


def test_a_provider_job_held_by_an_ended_process_is_claimed_at_once_and_others_wait(
    ledger: Ledger, holders: Holders
) -> None:
    # Given one open job, due now, per holder, each leased for another hour
    now = time.time()
    cases = {
        "ended": (holders.ended, True),
        "restarted-pid": (holders.restarted_pid, True),
        "running": (holders.running, False),
        "elsewhere": (holders.elsewhere, False),
        "other-namespace": (holders.other_namespace, False),
        "other-machine": (holders.other_machine, False),
        "older-kind": (holders.older_kind, False),
    }
    with ledger.write_engine.begin() as conn:
        for job_id, (holder, _) in cases.items():
            jobs.open_job(conn, job_row(job_id, now - 1))
            conn.execute(
                update(provider_jobs)
                .where(provider_jobs.c.id == job_id)
                .values(lease_owner=holder, lease_until=now + AN_HOUR)
            )
    # When a restarted worker claims the due jobs
    me = holder_identity()
    with ledger.write_engine.begin() as conn:
        claimed = jobs.claim_due(conn, me, time.time(), 60.0, limit=10)
    # Then it has those of ended processes, and leaves the others to their holders
    assert sorted(claimed) == sorted(job for job, (_, gone) in cases.items() if gone)
    # And once their leases run out, it has those too
    with ledger.write_engine.begin() as conn:
        conn.execute(update(provider_jobs).values(lease_until=now - 1))
        later = jobs.claim_due(conn, me, time.time(), 60.0, limit=10)
    assert sorted(later) == sorted(cases)


def job_row(job_id: str, opened_at: float) -> dict[str, object]:
    return {
        "id": job_id,
        "model_id": "00000000-0000-4000-8000-000000000001",
        "kind": "train",
        "backend": "openai",
        "environment": None,
        "spec": {},
        "cause": "m/1",
        "correlation_id": "c",
        "opened_at": opened_at,
    }


@pytest.mark.skipif(sys.platform != "linux", reason="start times since boot are Linux's")
def test_a_holders_start_is_counted_from_boot_so_a_clock_step_leaves_it_alive() -> None:
    # Given this process's name as a holder
    holder = parse_holder(holder_identity())
    # Then its start is seconds since this boot (a wall-clock step does not move it)
    with open("/proc/uptime") as uptime:
        since_boot = float(uptime.read().split()[0])
    assert holder is not None and holder.start is not None
    assert 0 <= holder.start <= since_boot + 1
