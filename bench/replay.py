"""Replay in the read benchmark: the read+decode ceiling, then the projections'
catch-up and rebuilds, timed stage by stage through the runners' own code."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.progress import Progress, TaskID

from bench.read_queries import DatabaseCpu
from bench.rss import RssSampler
from bench.service import BenchError
from commands.registry import ModelRegistry
from modelledger.bootstrap import Ledger
from projections import applying
from projections.base import Projection
from projections.follow import read_page
from projections.runner import ProjectionRunner
from projections.worker import PROJECTIONS, ProjectionWorker
from queries.ports import EventLog
from queries.projections import request_rebuild
from read_model.state import read_states

T = TypeVar("T")

PAGE = 5_000  # the rebuild's page size (RunnerOptions.rebuild_batch_size)


@dataclass
class ReplayResult:
    name: str
    kind: str  # ceiling | catch-up | rebuild
    projections: list[str]
    events: int
    seconds: float
    events_per_s: float
    cpu_pct: float  # this process, % of one core
    database_cpu_pct: float  # the PostgreSQL backends of the bench database
    peak_rss_mib: float
    stages: dict[str, float] = field(default_factory=dict)  # seconds summed over runners
    finished: dict[str, float] = field(default_factory=dict)  # projection -> seconds
    ratio: float | None = None  # events_per_s / ceiling


def read_ceiling(
    registry: ModelRegistry, head: int, db: DatabaseCpu, progress: Progress
) -> ReplayResult:
    """(a) Read pages of 5,000 notifications and decode every one: nothing else."""
    task = progress.add_task("ceiling: read+decode", total=head, stats="")
    to_event = registry.mapper.to_domain_event
    log = EventLog.of(registry)
    stages = {"read": 0.0, "decode": 0.0}
    after, events = 0, 0
    started, cpu, db_cpu = time.monotonic(), time.process_time(), db.sample()
    while True:
        t0 = time.perf_counter()
        page = read_page(log, after, PAGE)
        t1 = time.perf_counter()
        if not page:
            break
        for notification in page:
            to_event(notification)
        stages["read"] += t1 - t0
        stages["decode"] += time.perf_counter() - t1
        events += len(page)
        after = page[-1].id
        rate = events / max(time.monotonic() - started, 1e-9)
        progress.update(task, completed=after, stats=f"{rate:,.0f} events/s")
    seconds = time.monotonic() - started
    return ReplayResult(
        "read + decode",
        "ceiling",
        [],
        events,
        seconds,
        events / seconds,
        100 * (time.process_time() - cpu) / seconds,
        100 * db.between(db_cpu, db.sample()) / seconds,
        0.0,
        stages,
    )


class StageClock:
    """Seconds spent in wrapped callables, by (projection, stage); thread-safe."""

    def __init__(self) -> None:
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.done_at: dict[str, float] = {}
        self.lock = threading.Lock()

    def add(self, projection: str, stage: str, seconds: float) -> None:
        with self.lock:
            self.seconds[(projection, stage)] += seconds

    def wrap(self, projection: str, stage: str, fn: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            begun = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(projection, stage, time.perf_counter() - begun)

        return timed

    def by_stage(self) -> dict[str, float]:
        totals: defaultdict[str, float] = defaultdict(float)
        for (_, stage), seconds in self.seconds.items():
            totals[stage] += seconds
        return dict(totals)


@contextmanager
def instrumented(
    registry: ModelRegistry, runners: Sequence[ProjectionRunner]
) -> Iterator[StageClock]:
    """Time the stages of the runners' own code (read, decode, apply, claim, swap).

    Wraps bound methods of these runner objects and the recorder's
    ``select_notifications`` for the duration; the code that runs is the
    runner's. A read is charged to the projection whose thread made it.
    """
    clock = StageClock()
    recorder = registry.recorder
    select = recorder.select_notifications

    def timed_select(*args: Any, **kwargs: Any) -> Any:
        name = threading.current_thread().name.removeprefix("projection-")
        begun = time.perf_counter()
        try:
            return select(*args, **kwargs)
        finally:
            clock.add(name, "read", time.perf_counter() - begun)

    apply = applying.apply_events

    def timed_apply(*args: Any, **kwargs: Any) -> Any:
        name = threading.current_thread().name.removeprefix("projection-")
        begun = time.perf_counter()
        try:
            return apply(*args, **kwargs)
        finally:
            clock.add(name, "apply", time.perf_counter() - begun)

    recorder.select_notifications = timed_select  # type: ignore[method-assign]
    applying.apply_events = timed_apply
    for runner in runners:
        name = runner.projection.name
        runner._decode = clock.wrap(name, "decode", runner._decode)  # type: ignore[method-assign]
        runner._claim = clock.wrap(name, "claim", runner._claim)  # type: ignore[method-assign]
        runner._apply = clock.wrap(name, "page", runner._apply)  # type: ignore[method-assign]
        runner._swap = _mark_done(clock, name, runner._swap)  # type: ignore[method-assign]
    try:
        yield clock
    finally:
        del recorder.select_notifications  # the class's method again
        applying.apply_events = apply


def _mark_done(clock: StageClock, name: str, swap: Callable[..., None]) -> Callable[..., None]:
    def swapped(*args: Any, **kwargs: Any) -> None:
        swap(*args, **kwargs)
        clock.done_at[name] = time.monotonic()

    return swapped


def _positions(ledger: Ledger) -> dict[str, tuple[int, int, int | None, int | None]]:
    """Each projection's (generation, position, rebuild generation, rebuild position)."""
    with ledger.read_engine.connect() as conn:
        return {
            name: (s.generation, s.position, s.rebuild_generation, s.rebuild_position)
            for name, s in read_states(conn).items()
        }


def _failures(ledger: Ledger) -> list[str]:
    with ledger.read_engine.connect() as conn:
        return [
            f"{name}: {s.error}"
            for name, s in read_states(conn).items()
            if s.status == "failed" or (s.error or "").startswith("rebuild failed")
        ]


def run_projections(
    ledger: Ledger,
    selected: tuple[type[Projection], ...],
    head: int,
    kind: str,
    db: DatabaseCpu,
    rss: RssSampler,
    progress: Progress,
    timeout_s: float,
) -> ReplayResult:
    """Catch up (live path) or rebuild ``selected`` with a ProjectionWorker, as the
    CLI does (one runner thread per projection), timing each until it is done."""
    names = [p.name for p in selected]
    labels = [_label(p) for p in selected]
    label = f"{kind}: {'+'.join(labels) if len(names) < len(PROJECTIONS) else 'all'}"
    task = progress.add_task(label, total=head * len(selected), stats="")
    before = _positions(ledger)
    if kind == "rebuild":
        for name in names:
            request_rebuild(ledger.write_engine, name, {p.name for p in PROJECTIONS})
    worker = ProjectionWorker(ledger.write_engine, ledger.event_log, projections=selected)
    with rss.phase() as peak, instrumented(ledger.registry, worker.runners) as clock:
        started, cpu, db_cpu = time.monotonic(), time.process_time(), db.sample()
        worker.start()
        try:
            done = _wait_done(
                ledger, names, head, kind, before, clock, started, timeout_s, task, progress
            )
        finally:
            cpu_s = time.process_time() - cpu
            db_s = db.between(db_cpu, db.sample())
            worker.stop()
        peak_mib = peak()
    seconds = max(done.values())
    stages = clock.by_stage()
    page = stages.pop("page", 0.0)
    stages["commit"] = max(
        0.0, page - stages.get("decode", 0.0) - stages.get("apply", 0.0) - stages.get("claim", 0.0)
    )
    progress.update(task, completed=head * len(selected))
    return ReplayResult(
        label.split(": ", 1)[1],
        kind,
        names,
        head,
        seconds,
        head / seconds,
        100 * cpu_s / seconds,
        100 * db_s / seconds,
        peak_mib,
        stages,
        done,
    )


def _wait_done(
    ledger: Ledger,
    names: list[str],
    head: int,
    kind: str,
    before: dict[str, tuple[int, int, int | None, int | None]],
    clock: StageClock,
    started: float,
    timeout_s: float,
    task: TaskID,
    progress: Progress,
) -> dict[str, float]:
    """Seconds from start until each projection caught up (or swapped its rebuild in)."""
    done: dict[str, float] = {}
    while len(done) < len(names):
        if time.monotonic() - started > timeout_s:
            raise BenchError(f"{kind} of {names} not done after {timeout_s:.0f}s")
        time.sleep(0.05)
        if failures := _failures(ledger):
            raise BenchError(f"{kind} failed: {failures}")
        now = _positions(ledger)
        covered = 0
        for name in names:
            generation, position, _, rebuild_position = now[name]
            if kind == "rebuild":
                swapped = generation != before[name][0]
                covered += head if swapped else rebuild_position or 0
                if swapped and name not in done:
                    done[name] = clock.done_at.get(name, time.monotonic()) - started
            else:
                covered += position
                if position >= head and name not in done:
                    done[name] = time.monotonic() - started
        elapsed = time.monotonic() - started
        progress.update(
            task,
            completed=covered,
            stats=f"{covered / max(elapsed, 1e-9):,.0f} positions/s (sum over projections)",
        )
    return done


def _label(projection: type[Projection]) -> str:
    """Its name in the report: a variant made for the benchmark may set ``bench_label``."""
    return str(getattr(projection, "bench_label", projection.name))
