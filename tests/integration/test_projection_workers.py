"""Real `modelledger project` worker processes: killed in the middle of a catch-up, a
worker's successor loses and doubles nothing; two workers share the projections, one
writer each (the lease), and when one stops the other takes over.

Every test runs on SQLite and on PostgreSQL (``store_url``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError, ProgrammingError

from modelledger.bootstrap import Ledger
from projections.catalogue import CatalogueProjection
from projections.runner import RunnerOptions
from projections.verify import verify_projection
from projections.worker import PROJECTIONS, ProjectionWorker
from read_model.state import ProjectionState, projection_state, read_states
from tests.support.histories import (
    a_model_story,
    assert_read_model_matches_the_log,
    head,
    write_models,
)
from tests.support.ledgers import make_ledger
from write_model.model import AIModel
from write_model.values import EventMetadata

NAMES = tuple(p.name for p in PROJECTIONS)
STOP_TIMEOUT_S = 20.0


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def owns(self, state: ProjectionState) -> bool:
        """Worker identities are ``host:pid:random;start=...;ns=...``."""
        return state.owner is not None and state.owner.rsplit(":", 2)[1] == str(self.process.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; its exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop within {STOP_TIMEOUT_S} s:\n{self.output()}")


@pytest.fixture
def start_worker(store_url: str, tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    """Start `python -m modelledger project` on the test's store (in tmp_path, so no
    .env is read); every one still running at the end is killed."""
    started: list[Worker] = []
    env = {name: value for name, value in os.environ.items() if not name.startswith("MODELLEDGER_")}
    env |= {
        "MODELLEDGER_DATABASE_URL": store_url,
        "MODELLEDGER_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }

    def start(name: str) -> Worker:
        log = tmp_path / f"worker-{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelledger", "project"],
                cwd=tmp_path,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(worker := Worker(process, log))
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    """The test's own view of the store (it runs no projections itself)."""
    built = make_ledger(store_url, db_pool_size=4)
    yield built
    built.close()


def states(ledger: Ledger) -> dict[str, ProjectionState]:
    """The state rows; none before a worker has created the table."""
    with ledger.read_engine.connect() as conn:
        try:
            return read_states(conn)
        except (OperationalError, ProgrammingError):  # no such table (yet)
            return {}


def watch(
    ledger: Ledger,
    until: Callable[[dict[str, ProjectionState]], bool],
    what: str,
    timeout: float,
    workers: tuple[Worker, ...] = (),
    every: Callable[[dict[str, ProjectionState]], None] = lambda _: None,
) -> dict[str, ProjectionState]:
    """Poll the state rows (checking ``every`` poll) until ``until`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        current = states(ledger)
        if len(current) == len(NAMES):
            every(current)
            if until(current):
                return current
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"a worker exited ({worker.process.returncode}):\n{worker.output()}")
        if time.monotonic() > deadline:
            details = "\n".join(str(s) for s in current.values())
            pytest.fail(f"not within {timeout} s: {what}\n{details}")
        time.sleep(0.003)


def at_head(ledger: Ledger) -> Callable[[dict[str, ProjectionState]], bool]:
    def check(current: dict[str, ProjectionState]) -> bool:
        top = head(ledger.registry)
        return all(current[name].position == top for name in NAMES)

    return check


def assert_rebuilt_the_same(ledger: Ledger) -> None:
    """Each projection equals a rebuild from scratch at the head (`modelledger verify`)."""
    top = head(ledger.registry)
    for projection in PROJECTIONS:
        verdict = verify_projection(ledger.write_engine, ledger.event_log, projection)
        assert verdict.consistent, verdict.differences
        assert verdict.position == top


def assert_consistent(ledger: Ledger) -> None:
    """Each projection equals a rebuild from scratch and a fold of the log."""
    assert_rebuilt_the_same(ledger)
    assert_read_model_matches_the_log(ledger)


# -- starting together -------------------------------------------------------------------


def test_workers_starting_at_the_same_moment_on_a_fresh_store_all_come_up(store_url: str) -> None:
    # Given a store whose read tables do not exist yet, and two workers (as two
    # processes of a first deployment would be)
    ledgers = [make_ledger(store_url, db_pool_size=2) for _ in range(2)]
    workers = [ProjectionWorker(each.write_engine, each.event_log) for each in ledgers]
    together = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def start(worker: ProjectionWorker) -> None:
        together.wait()
        try:
            worker.start()
        except Exception as error:
            errors.append(error)

    try:
        # When they start at the same moment
        threads = [threading.Thread(target=start, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        # Then neither trips over the other creating the tables: both run, and every
        # projection is there, generation 1, taken by one of them
        assert errors == []
        up = states(ledgers[0])
        assert sorted(up) == sorted(NAMES)
        assert all(state.generation == 1 for state in up.values())
    finally:
        for worker in workers:
            worker.stop()
        for each in ledgers:
            each.close()


# -- crash safety -------------------------------------------------------------------


@pytest.mark.slow  # starts a worker process over thousands of events
def test_a_worker_killed_mid_catch_up_resumes_without_losing_or_doubling_an_event(
    ledger: Ledger, start_worker: Callable[[str], Worker]
) -> None:
    # Given a log of thousands of events: more than one catch-up page for every projection
    write_models(ledger.registry, 2200, seed=11)
    top = head(ledger.registry)
    assert top > RunnerOptions().rebuild_batch_size  # the catch-up page size

    # When a worker catching up is killed (SIGKILL) in the middle of it
    first = start_worker("first")
    watch(
        ledger,
        lambda s: any(0 < state.position < top for state in s.values()),
        "the worker is part-way through its catch-up",
        timeout=60,
        workers=(first,),
    )
    first.process.kill()
    first.process.wait(timeout=STOP_TIMEOUT_S)
    left = states(ledger)
    assert any(state.position < top for state in left.values()), left
    assert all(first.owns(state) for state in left.values() if state.position > 0)

    # (its leases would last another hour: a successor that waited them out would never come)
    with ledger.write_engine.begin() as conn:
        conn.execute(
            update(projection_state)
            .where(projection_state.c.owner == left["catalogue"].owner)
            .values(lease_until=time.time() + 3600)
        )

    def only_the_new_worker_writes(current: dict[str, ProjectionState]) -> None:
        for name, state in current.items():
            if (state.owner, state.position) != (left[name].owner, left[name].position):
                assert second.owns(state), f"{name} was taken by {state.owner}"

    # When a new worker starts (a restart on the same host)
    second = start_worker("second")
    # Then it takes every projection over at once (the dead worker's process is gone,
    # so its leases are not waited out) and catches up to the head
    watch(
        ledger,
        lambda s: at_head(ledger)(s) and all(second.owns(state) for state in s.values()),
        "the new worker takes over and reaches the head",
        timeout=60,
        workers=(second,),
        every=only_the_new_worker_writes,
    )
    # ...and then every projection holds each event exactly once: it equals a rebuild
    # from scratch at the head (a lost or doubled event would show as a difference)
    assert_rebuilt_the_same(ledger)

    # When the new worker is stopped (SIGTERM)
    assert second.stop() == 0, second.output()
    # Then it has let its leases go
    assert all(state.owner is None for state in states(ledger).values())


# -- two workers, one writer each -----------------------------------------------------


def test_two_workers_write_each_projection_one_at_a_time_and_the_other_takes_over(
    ledger: Ledger, start_worker: Callable[[str], Worker]
) -> None:
    # Given some history, and two worker processes on the same store
    write_models(ledger.registry, 60, seed=12)
    workers = (start_worker("a"), start_worker("b"))
    watch(
        ledger,
        lambda s: (
            all(s[name].owner is not None for name in NAMES)
            and all("SIGTERM stops it" in w.output() for w in workers)
        ),
        "both workers are up and the projections are taken",
        timeout=60,
        workers=workers,
    )
    owners = {name: state.owner for name, state in states(ledger).items()}
    positions = {name: state.position for name, state in states(ledger).items()}

    def one_writer_that_never_changes(current: dict[str, ProjectionState]) -> None:
        for name, state in current.items():
            assert state.owner == owners[name], f"{name} changed hands while both ran"
            assert state.position >= positions[name], f"{name} went back"
            positions[name] = state.position

    # When commands are written while both run
    for story in range(10):
        a_model_story(ledger.registry, f"story-{story}")
        one_writer_that_never_changes(states(ledger))
    # Then each projection keeps one owner, one of the two workers, all the way to the head
    watch(
        ledger,
        at_head(ledger),
        "the projections reach the head",
        timeout=30,
        workers=workers,
        every=one_writer_that_never_changes,
    )
    assert all(any(w.owns(state) for w in workers) for state in states(ledger).values())
    # and each equals a rebuild from scratch and a fold of the log
    assert_consistent(ledger)

    # When the worker writing the catalogue is stopped (SIGTERM) and commands go on
    owner = next(w for w in workers if w.owns(states(ledger)["catalogue"]))
    other = next(w for w in workers if w is not owner)
    assert owner.stop() == 0, owner.output()
    for story in range(10, 14):
        a_model_story(ledger.registry, f"story-{story}")
    # Then the other worker takes over every projection at once (the stopped one let
    # its leases go) and carries them on to the new head
    taken = time.monotonic()
    watch(
        ledger,
        lambda s: at_head(ledger)(s) and all(other.owns(state) for state in s.values()),
        "the other worker takes over",
        timeout=15,
        workers=(other,),
    )
    assert time.monotonic() - taken < RunnerOptions().lease_seconds  # no lease to wait out
    assert_consistent(ledger)
    assert other.stop() == 0, other.output()


def test_under_load_pages_grow_while_a_lone_event_is_projected_at_once(ledger: Ledger) -> None:
    # Given a catalogue projection that lingers 1 s after a page of 3 events or more
    options = RunnerOptions(linger_seconds=1.0, linger_from=3)
    commits: list[tuple[int, float]] = []
    worker = ProjectionWorker(
        ledger.write_engine,
        ledger.event_log,
        options,
        projections=(CatalogueProjection,),
        on_commit=lambda _name, _generation, position: commits.append((position, time.monotonic())),
    )
    worker.start()
    try:
        # (once it follows the log: its start, on a loaded machine, is not what is timed)
        first = append_models(ledger, 1)
        wait_for(lambda: commits and commits[-1][0] == first, "the first event")
        # When one model is created alone
        asked = time.monotonic()
        lone = append_models(ledger, 1)
        wait_for(lambda: commits and commits[-1][0] == lone, "the lone event")
        # Then it is projected at once
        assert commits[-1][1] - asked < options.linger_seconds / 2
        # When 5 arrive together (a page worth lingering after), then 3 one by one
        burst = append_models(ledger, 5)
        wait_for(lambda: commits[-1][0] == burst, "the burst")
        singles = [append_models(ledger, 1) for _ in range(3)]
        wait_for(lambda: commits[-1][0] == singles[-1], "the singles")
        # Then the three are projected in one page, after the linger
        positions = [position for position, _ in commits]
        assert positions[-3:] == [lone, burst, singles[-1]]
    finally:
        worker.stop()


def append_models(ledger: Ledger, count: int) -> int:
    """``count`` models registered in one commit; the last one's position."""
    meta = EventMetadata("test", "c", "test")
    models = [
        AIModel.register(name=f"m-{uuid.uuid4()}", project="p", task="t", framework="f",
                         tags=[], meta=meta)
        for _ in range(count)
    ]  # fmt: skip
    to_stored = ledger.registry.mapper.to_stored_event
    stored = [to_stored(event) for model in models for event in model.collect_events()]
    positions = ledger.registry.recorder.insert_events(stored)
    assert positions
    return max(positions)


def wait_for(reached: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while not reached():
        assert time.monotonic() < deadline, f"{what} was never projected"
        time.sleep(0.005)
