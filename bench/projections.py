"""Read-side benchmark: replay and rebuild rates, query latency, live projection lag.

Usage (from the repository root)::

    .venv/bin/python -m bench.projections --events 1000000 --json var/bench-read.json

One run, on a fresh database of a loopback PostgreSQL server (dropped afterwards):

1. **history** - N events of realistic model histories (create, update, train,
   complete with metrics or fail, deploy, roll back, undeploy, archive; about
   ten events a model) made by the ``AIModel`` aggregate itself and appended
   with ``registry.recorder.insert_events`` in large batches (not over HTTP).
2. **replay** - (a) the *ceiling*: this process reads the notification log in
   pages of 5,000 and decodes every notification into a domain event; (b) the
   projections' *catch-up* (the live path, all of them at once, from position
   0); (c) a *rebuild* of each projection alone and of all together,
   driven through ``ProjectionRunner`` exactly as ``modelledger rebuild`` does
   (blue/green into a fresh generation, then the swap). Rates are positions
   covered per second; each is also given as a ratio to (a).
3. **counters vs GROUP BY** (``bench.read_queries``) - statistics and
   leaderboards from the projection's counter/leaderboard tables against
   GROUP BY queries over the catalogue, as direct SQL.
4. **queries over HTTP** - ``modelledger serve`` on that database; 32 clients
   per query kind: search, statistics, top-performing, one model.
5. **live lag** - commands sent to the running service; for each, the time
   from its response until a query's ``X-Position`` reaches its position.

Progress goes to stderr; the Markdown report goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import psutil  # type: ignore[import-untyped]
import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench.read_queries import (
    DatabaseCpu,
    LagResult,
    QueryResult,
    SqlResult,
    Vocabulary,
    as_of_kinds,
    compare_counters,
    measure_lag,
    run_query_load,
    wait_caught_up,
)
from bench.service import BenchError, check_loopback_pg, running_server, with_database
from commands.registry import ModelRegistry
from modelledger.bootstrap import Ledger, bootstrap
from modelledger.seed import FAILURES, PROJECTS, TAGS, TASKS, metrics_for
from modelledger.settings import Settings
from projections.base import Projection
from projections.follow import read_page
from projections.runner import ProjectionRunner
from projections.timeline import TimelineProjection
from projections.worker import PROJECTIONS, ProjectionWorker, ensure_projections
from queries.projections import request_rebuild
from read_model.state import read_states
from write_model.errors import DomainError
from write_model.model import AIModel
from write_model.values import EventMetadata, instant

console = Console(stderr=True)
T = TypeVar("T")

PAGE = 5_000  # the rebuild's page size (RunnerOptions.rebuild_batch_size)
RSS_INTERVAL_S = 0.05

# --------------------------------------------------------------------------
# Peak memory
# --------------------------------------------------------------------------


class RssSampler:
    """Samples this process's RSS in a thread; ``phase()`` gives each phase's peak."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.thread.start()

    def _sample(self) -> int:
        rss = int(self.proc.memory_info().rss)
        self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self.stopping.wait(RSS_INTERVAL_S):
            self._sample()

    @contextmanager
    def phase(self) -> Iterator[Callable[[], float]]:
        """Yields a function that returns the phase's peak RSS in MiB (so far)."""
        self.peak = 0
        self._sample()

        def peak_mib() -> float:
            self._sample()
            return self.peak / 2**20

        yield peak_mib

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=1)


def max_rss_mib() -> float:
    """Peak RSS of the whole run (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------
# 1. History generation through the aggregate
# --------------------------------------------------------------------------

ACTORS = (
    "alice",
    "bob",
    "carol",
    "dmitri",
    "erin",
    "farah",
    "gustavo",
    "hiro",
    "ines",
    "jomo",
    "ci-bot",
    "airflow",
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Words for names and descriptions, drawn with Zipf-like weights: searches for
# the first words hit thousands of models, for the last ones a handful.
WORDS = _words(
    "baseline fraud churn ranking recommendation sentiment forecast demand anomaly "
    "detection retrieval embedding transformer customer realtime batch pricing risk "
    "credit spam moderation toxicity intent translation summarization segmentation "
    "resnet bert whisper yolo distilled quantized multilingual streaming mobile edge "
    "inventory logistics catalog search ads support vision voice ocr speech keyword "
    "entity question answering clustering propensity uplift attribution lifetime value "
    "conversion retention engagement session query rewrite spelling autocomplete image "
    "caption audio transcript invoice receipt document layout table chart satellite "
    "medical radiology genomics protein molecule weather energy traffic "
)
WORD_WEIGHTS = tuple(1.0 / (rank + 1) for rank in range(len(WORDS)))
ENVIRONMENTS = ("staging", "production")
RUNS_WEIGHTS = (8, 14, 20, 20, 15, 10, 8, 5)  # 0..7 training runs, mean ~3


class Story:
    """One model's life, decided by its own seeded RNG (a run is reproducible)."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.rng = rng
        self.actor = rng.choice(ACTORS)
        self.correlation = self._uuid()
        task = rng.choice(list(TASKS))
        word = rng.choices(WORDS, WORD_WEIGHTS)[0]
        self.task = task
        self.model = AIModel.register(
            name=f"{word}-{task}-{index:07d}",
            project=rng.choice(PROJECTS),
            task=task,
            framework=rng.choice(TASKS[task]),
            description=self._description(task),
            tags=rng.sample(TAGS, rng.randint(0, 3)),
            configuration={"seed": index, "layers": rng.randint(2, 48)},
            meta=self._meta(),
        )

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _meta(self) -> EventMetadata:
        """Each command its own causation id; one model's story shares a correlation id."""
        return EventMetadata(self.actor, self.correlation, self._uuid())

    def _description(self, task: str) -> str:
        words = self.rng.choices(WORDS, WORD_WEIGHTS, k=self.rng.randint(5, 12))
        return f"{task} model: " + " ".join(words)

    def play(self) -> list[AIModel.Event]:
        rng, model = self.rng, self.model
        if rng.random() < 0.2:
            model.update({"description": self._description(self.task)}, self._meta())
        self._train(rng.choices(range(len(RUNS_WEIGHTS)), RUNS_WEIGHTS)[0])
        if model.versions and rng.random() < 0.75:
            self._deploy()
        if rng.random() < 0.15:
            tags = sorted(set(model.tags) ^ {rng.choice(TAGS)})
            model.update({"tags": tags}, self._meta())
        if rng.random() < 0.05:
            for environment in sorted(model.deployments):
                model.undeploy(environment=environment, meta=self._meta())
            model.archive(reason=rng.choice(("superseded", "abandoned", "")), meta=self._meta())
        return cast(list[AIModel.Event], list(model.collect_events()))

    def _train(self, runs: int) -> None:
        rng, model = self.rng, self.model
        skill = rng.uniform(0.9, 1.05)
        for attempt in range(runs):
            run_id = self._uuid()
            model.start_training(
                run_id=run_id,
                dataset=f"s3://data/{model.project}/{self.task}/{attempt}",
                hyperparameters={"lr": 10 ** -rng.randint(2, 5), "epochs": rng.randint(1, 30)},
                backend=rng.choice(("local", "openai", "sagemaker")),
                meta=self._meta(),
            )
            last = attempt == runs - 1
            if last and rng.random() < 0.05:
                return  # still training
            if rng.random() < 0.15:
                model.fail_training(run_id=run_id, reason=rng.choice(FAILURES), meta=self._meta())
                continue
            model.complete_training(
                run_id=run_id,
                metrics=metrics_for(self.task, rng, skill + attempt * 0.03),
                artifact_uri=f"s3://models/{model.id}/{len(model.versions) + 1}",
                meta=self._meta(),
            )

    def _deploy(self) -> None:
        rng, model = self.rng, self.model
        latest = len(model.versions)
        for environment in rng.sample(ENVIRONMENTS, rng.randint(1, 2)):
            for version in range(max(1, latest - 1), latest + 1):
                model.deploy(
                    environment=environment,
                    model_version=version,
                    endpoint_url=f"https://{environment}.example.com/{model.id}/{version}",
                    meta=self._meta(),
                )
            if latest > 1 and rng.random() < 0.15:
                model.roll_back(environment=environment, meta=self._meta())
            elif rng.random() < 0.1:
                model.undeploy(environment=environment, meta=self._meta())


@dataclass
class HistoryResult:
    events: int = 0
    models: int = 0
    seconds: float = 0.0
    events_per_s: float = 0.0
    insert_calls: int = 0
    insert_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)


class Sample:
    """A uniform reservoir sample of the model ids (for GET /models/{id})."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.ids: list[str] = []
        self.seen = 0

    def offer(self, model_id: str) -> None:
        self.seen += 1
        if len(self.ids) < self.size:
            self.ids.append(model_id)
        elif (slot := self.rng.randrange(self.seen)) < self.size:
            self.ids[slot] = model_id


def generate_history(
    registry: ModelRegistry,
    target: int,
    batch: int,
    seed: int,
    sample: Sample,
    progress: Progress,
) -> HistoryResult:
    """Append exactly ``target`` events, ``batch`` per insert_events call.

    Events are made on this thread while the previous batch is inserted on
    another (psycopg releases the GIL while PostgreSQL works). The last model's
    history may be cut short: any prefix of a valid history is valid.
    """
    result = HistoryResult()
    task = progress.add_task("history", total=target, stats="")
    to_stored = registry.mapper.to_stored_event
    pending: list[StoredEvent] = []
    by_type: Counter[str] = Counter()
    in_flight: list[Future[float]] = []
    started = time.monotonic()

    def insert(stored: list[StoredEvent]) -> float:
        begun = time.perf_counter()
        registry.recorder.insert_events(stored)
        return time.perf_counter() - begun

    def drain(keep: int) -> None:
        while len(in_flight) > keep:
            result.insert_seconds += in_flight.pop(0).result()
            result.insert_calls += 1

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="insert") as pool:
        index = 0
        while result.events < target:
            story = Story(index, random.Random(seed * 1_000_003 + index))
            events = story.play()[: target - result.events]
            index += 1
            sample.offer(str(story.model.id))
            result.events += len(events)
            for event in events:
                by_type[type(event).__name__] += 1
                pending.append(to_stored(event))
            if len(pending) >= batch or result.events >= target:
                drain(keep=1)  # at most one batch in the database while we make the next
                in_flight.append(pool.submit(insert, pending))
                pending = []
                elapsed = time.monotonic() - started
                progress.update(
                    task,
                    completed=result.events,
                    stats=f"{result.events / elapsed:,.0f} events/s  {index:,} models",
                )
        drain(keep=0)
    result.models = index
    result.seconds = time.monotonic() - started
    result.events_per_s = result.events / result.seconds
    result.by_type = dict(by_type.most_common())
    progress.update(task, completed=target)
    return result


# --------------------------------------------------------------------------
# 2. Replay: the read+decode ceiling, catch-up and rebuilds
# --------------------------------------------------------------------------


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
    stages = {"read": 0.0, "decode": 0.0}
    after, events = 0, 0
    started, cpu, db_cpu = time.monotonic(), time.process_time(), db.sample()
    while True:
        t0 = time.perf_counter()
        page = read_page(registry.recorder, after, PAGE)
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

    recorder.select_notifications = timed_select  # type: ignore[method-assign]
    for runner in runners:
        name = runner.projection.name
        runner._decode = clock.wrap(name, "decode", runner._decode)  # type: ignore[method-assign]
        runner._project = clock.wrap(name, "apply", runner._project)  # type: ignore[method-assign]
        runner._claim = clock.wrap(name, "claim", runner._claim)  # type: ignore[method-assign]
        runner._apply = clock.wrap(name, "page", runner._apply)  # type: ignore[method-assign]
        runner._swap = _mark_done(clock, name, runner._swap)  # type: ignore[method-assign]
    try:
        yield clock
    finally:
        del recorder.select_notifications  # the class's method again


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
    worker = ProjectionWorker(ledger.write_engine, ledger.registry, projections=selected)
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


# --------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------


@contextmanager
def bench_database(pg_url: str, keep: bool) -> Iterator[str]:
    """A new database ``bench_read_<random>`` on the server; dropped unless ``keep``."""
    name = f"bench_read_{secrets.token_hex(4)}"
    ident = sql.Identifier(name)
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        yield with_database(pg_url, name)
    finally:
        if keep:
            console.print(f"kept database {name}: DROP DATABASE {name} when done")
        else:
            with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def vacuum_analyze(db_url: str) -> float:
    """Planner statistics and visibility maps for the freshly built tables, as
    autovacuum would give them in a while (a steady state, not the first minute)."""
    begun = time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - begun


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


@dataclass
class BenchResult:
    config: dict[str, Any]
    history: HistoryResult | None = None
    replay: list[ReplayResult] = field(default_factory=list)
    sql: list[SqlResult] = field(default_factory=list)
    queries: list[QueryResult] = field(default_factory=list)
    as_of_queries: list[QueryResult] = field(default_factory=list)
    lag: LagResult | None = None
    models_in_catalogue: int = 0
    vacuum_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    failure: str | None = None


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult(config={k: v for k, v in vars(args).items() if k != "json"})
    rss = RssSampler()
    try:
        with (
            Progress(
                TextColumn("{task.description:24}", markup=False),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}", markup=False),
                console=console,
            ) as progress,
            bench_database(args.pg_url, args.keep_database) as db_url,
        ):
            _run_in(db_url, args, result, rss, progress)
    except (BenchError, psycopg.Error, OSError, DomainError) as exc:
        result.failure = f"{type(exc).__name__}: {exc}"
        console.print(f"[red]failed:[/red] {result.failure}", markup=True)
    finally:
        rss.close()
    result.peak_rss_mib = max_rss_mib()
    return result


def _run_in(
    db_url: str,
    args: argparse.Namespace,
    result: BenchResult,
    rss: RssSampler,
    progress: Progress,
) -> None:
    console.print(f"database: {db_url}")
    dbname = db_url.rsplit("/", 1)[1]
    db = DatabaseCpu(dbname)
    ledger = bootstrap(Settings(database_url=db_url, projections=False))
    sample = Sample(2_000, random.Random(args.seed))
    try:
        with rss.phase() as peak:
            result.history = generate_history(
                ledger.registry, args.events, args.batch, args.seed, sample, progress
            )
            result.history.peak_rss_mib = peak()
        head = ledger.registry.recorder.max_notification_id() or 0
        if head != args.events:
            raise BenchError(f"the log holds {head:,} events, not {args.events:,}")
        with rss.phase() as peak:
            ceiling = read_ceiling(ledger.registry, head, db, progress)
            ceiling.peak_rss_mib = peak()
        result.replay.append(ceiling)
        ensure_projections(ledger.write_engine)
        result.replay.append(
            run_projections(ledger, PROJECTIONS, head, "catch-up", db, rss, progress, args.timeout)
        )
        for selected in _rebuild_sets(args.rebuilds):
            result.replay.append(
                run_projections(ledger, selected, head, "rebuild", db, rss, progress, args.timeout)
            )
        for replay in result.replay:
            replay.ratio = replay.events_per_s / ceiling.events_per_s
        result.models_in_catalogue = result.history.models
        vocabulary = Vocabulary(
            words=tuple(WORDS),
            tags=tuple(TAGS),
            tasks=tuple(TASKS),
            model_ids=tuple(sample.ids),
            moments=moments_of(ledger.registry, head),
        )
        if args.skip_sql and args.skip_http and args.skip_lag and not args.as_of:
            return
        result.vacuum_seconds = vacuum_analyze(db_url)
        if not args.skip_sql:
            result.sql = compare_counters(
                ledger.read_engine, db_url, args.sql_repeat, args.sql_max_seconds, progress
            )
    finally:
        ledger.close()
    if args.skip_http and args.skip_lag and not args.as_of:
        return
    with (
        tempfile.TemporaryDirectory(prefix="modelledger-bench-read-") as tmp,
        running_server(db_url, args.workers, Path(tmp), args.startup_timeout) as server,
    ):
        wait_caught_up(server.base_url, args.timeout, progress)
        load = partial(
            run_query_load,
            server,
            dbname,
            vocabulary,
            args.clients,
            args.warmup,
            args.duration,
            args.seed,
            progress,
        )
        if not args.skip_http:
            result.queries = load()
        if args.as_of:
            result.as_of_queries = load(kinds=as_of_kinds(vocabulary, args.seed))
        try:
            if not args.skip_lag:
                result.lag = measure_lag(
                    server.base_url, args.lag_commands, args.lag_clients, progress
                )
        finally:  # the server's own log, for a look when something failed
            Path("var").mkdir(exist_ok=True)
            shutil.copy(server.log_path, Path("var") / "bench-read-server.log")


def moments_of(registry: ModelRegistry, head: int) -> tuple[str, ...]:
    """The times of the events a tenth, a quarter, half, three quarters and all the
    way into the log: as_of questions about early, middle and late registries."""
    moments = []
    for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
        position = max(1, int(head * fraction))
        (stored,) = registry.recorder.select_notifications(position, 1)
        moments.append(
            instant(cast(AIModel.Event, registry.mapper.to_domain_event(stored)).timestamp)
        )
    return tuple(moments)


class TimelineWithoutCheckpoints(TimelineProjection):
    """The baseline of the timeline's checkpoints: the same rebuild, never one."""

    checkpoint_every = sys.maxsize
    bench_label = "timeline without checkpoints"


REBUILD_CHOICES: dict[str, type[Projection]] = {
    **{p.name: p for p in PROJECTIONS},
    "timeline-without-checkpoints": TimelineWithoutCheckpoints,
}


def _rebuild_sets(spec: list[str]) -> list[tuple[type[Projection], ...]]:
    return [PROJECTIONS if name == "all" else (REBUILD_CHOICES[name],) for name in spec]


def _label(projection: type[Projection]) -> str:
    return str(getattr(projection, "bench_label", projection.name))


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _stage_cell(r: ReplayResult) -> str:
    """Where the time went, as % of the runners' summed time until each was done."""
    order = ("read", "decode", "apply", "claim", "commit")
    total = sum(r.finished.values()) or r.seconds
    parts = [
        f"{stage} {100 * r.stages[stage] / total:.0f}%" for stage in order if stage in r.stages
    ]
    if "apply" in r.stages:
        other = total - sum(r.stages.get(stage, 0.0) for stage in order)
        parts.append(f"other {100 * max(0.0, other) / total:.0f}%")
    return ", ".join(parts)


def history_report(h: HistoryResult) -> str:
    types = ", ".join(f"{name} {count:,}" for name, count in h.by_type.items())
    return "\n".join(
        [
            f"- History: {h.events:,} events of {h.models:,} models "
            f"({h.events / max(h.models, 1):.1f} events/model) made by the aggregate and "
            f"appended in {h.insert_calls:,} `insert_events` calls: {h.seconds:.1f} s, "
            f"{h.events_per_s:,.0f} events/s (inserts alone {h.insert_seconds:.1f} s); "
            f"peak RSS {h.peak_rss_mib:,.0f} MiB.",
            f"- Event types: {types}.",
        ]
    )


def replay_table(replays: list[ReplayResult]) -> str:
    lines = [
        "| what | events | seconds | events/s | vs ceiling | bench CPU% | PostgreSQL CPU% "
        "| peak RSS MiB | time split (% of runner wall time) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in replays:
        ratio = "1.00" if r.kind == "ceiling" else f"{r.ratio:.2f}" if r.ratio else "-"
        finished = ""
        if len(r.finished) > 1:
            finished = "; done at " + ", ".join(f"{n} {s:.1f}s" for n, s in r.finished.items())
        lines.append(
            f"| {r.kind}: {r.name} | {r.events:,} | {r.seconds:.1f} | {r.events_per_s:,.0f} "
            f"| {ratio} | {r.cpu_pct:.0f} | {r.database_cpu_pct:.0f} | {r.peak_rss_mib:,.0f} "
            f"| {_stage_cell(r)}{finished} |"
        )
    return "\n".join(lines)


def sql_table(rows: list[SqlResult]) -> str:
    lines = [
        "| question | answered from | runs | p50 ms | p99 ms | same answer |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        same = "-" if r.same_answer is None else "yes" if r.same_answer else "**NO**"
        lines.append(
            f"| {r.question} | {r.variant} | {r.runs} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {same} |"
        )
    return "\n".join(lines)


def query_table(rows: list[QueryResult]) -> str:
    lines = [
        "| query | requests | req/s | p50 ms | p99 ms | errors | server CPU% | PostgreSQL CPU% "
        "| goal p99 |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        goal = "-"
        if r.goal_p99_ms is not None:
            goal = f"< {r.goal_p99_ms:.0f} ms: " + (
                "**no answers**"
                if r.requests == 0 or r.errors
                else ("met" if r.p99_ms < r.goal_p99_ms else "**missed**")
            )
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items())) or "0"
        lines.append(
            f"| {r.name} | {r.requests:,} | {r.per_s:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {errors} | {r.server_cpu_pct:.0f} | {r.database_cpu_pct:.0f} | {goal} |"
        )
    return "\n".join(lines)


def lag_report(lag: LagResult) -> str:
    met = "**no answers**" if lag.errors else ("met" if lag.p99_ms < 100 else "**missed**")
    return (
        f"- Live lag ({lag.commands:,} commands: create/train/complete, {lag.clients} clients, "
        f"each waiting until its command is visible): p50 {lag.p50_ms:.1f} ms, "
        f"p99 {lag.p99_ms:.1f} ms, max {lag.max_ms:.1f} ms (goal p99 < 100 ms: {met}); "
        f"not visible within {lag.timeout_s:.0f} s: {lag.timeouts}; command errors: "
        f"{lag.errors}. Command latency p50/p99 {lag.command_p50_ms:.1f}/"
        f"{lag.command_p99_ms:.1f} ms; one visibility poll p50 {lag.poll_p50_ms:.1f} ms "
        "(the lag's resolution)."
    )


def report(result: BenchResult) -> str:
    parts: list[str] = []
    if result.history is not None:
        parts += [history_report(result.history), ""]
    if result.replay:
        parts += [replay_table(result.replay), ""]
        rebuilds = [r for r in result.replay if r.kind == "rebuild" and r.ratio is not None]
        if rebuilds:
            worst = min(rebuilds, key=lambda r: r.ratio or 0.0)
            verdict = "met" if (worst.ratio or 0.0) >= 0.5 else "**missed**"
            parts.append(
                f"- Goal rebuild >= 50% of the ceiling: {verdict} (lowest: {worst.name}, "
                f"{worst.ratio:.2f})."
            )
        parts.append(
            "- events/s = log positions covered / wall seconds (for several projections "
            "at once: each covers every position). Time split: summed over the runner "
            "threads until each was done; read = select_notifications, decode = "
            "to_domain_event of the events it reads, apply = prepare + process_event + "
            "flush (SQL), claim = "
            "the guarded position update, commit = the rest of the page's transaction, "
            "other = state reads, leases, the live step between rebuild pages."
        )
        parts.append("")
    if result.sql:
        parts += [
            f"Counters/leaderboard tables vs GROUP BY at {result.models_in_catalogue:,} models "
            f"(direct SQL on one connection, after VACUUM ANALYZE, "
            f"{result.vacuum_seconds:.0f} s):",
            "",
            sql_table(result.sql),
            "",
        ]
    if result.queries:
        cfg = result.config
        parts += [
            f"Queries over HTTP at {result.models_in_catalogue:,} models: {cfg['clients']} "
            f"concurrent clients, {cfg['workers']} server worker(s), each kind alone for "
            f"{cfg['warmup']:g} s warm-up + {cfg['duration']:g} s measured:",
            "",
            query_table(result.queries),
            "",
        ]
    if result.as_of_queries:
        parts += [
            f"Queries as_of a past time (the timeline projection, never cached), at "
            f"{result.models_in_catalogue:,} models, the same load:",
            "",
            query_table(result.as_of_queries),
            "",
        ]
    if result.lag is not None:
        parts += [lag_report(result.lag), ""]
    parts.append(
        f"- Peak RSS of the benchmark process (whole run): {result.peak_rss_mib:,.0f} MiB."
    )
    if result.failure:
        parts.append(f"- FAILED: {result.failure.splitlines()[0]}")
    return "\n".join(parts)


def write_json(path: Path, result: BenchResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.projections", description=__doc__.splitlines()[0]
    )
    p.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    p.add_argument("--batch", type=int, default=5_000, help="events per insert_events call")
    p.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of a loopback PostgreSQL server (a database is created on it)",
    )
    p.add_argument("--keep-database", action="store_true", help="do not drop it afterwards")
    p.add_argument(
        "--rebuilds",
        default="catalogue,versions,deployments,all",
        help="rebuilds to time: projection names and/or 'all' (empty: none)",
    )
    p.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients per query")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per query kind")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per query kind")
    p.add_argument("--workers", type=int, default=2, help="MODELLEDGER_WORKERS for the server")
    p.add_argument("--lag-commands", type=int, default=500, help="commands for the live lag")
    p.add_argument("--lag-clients", type=int, default=4, help="concurrent lag senders")
    p.add_argument("--sql-repeat", type=int, default=200, help="runs per SQL variant")
    p.add_argument("--sql-max-seconds", type=float, default=15.0, help="cap per SQL variant")
    p.add_argument("--skip-sql", action="store_true", help="no counters-vs-GROUP BY step")
    p.add_argument("--skip-http", action="store_true", help="no HTTP query latency step")
    p.add_argument("--skip-lag", action="store_true", help="no live lag step")
    p.add_argument("--as-of", action="store_true", help="also time queries as_of past times")
    p.add_argument("--seed", type=int, default=7, help="random seed of the histories")
    p.add_argument("--timeout", type=float, default=3600.0, help="cap per replay phase (s)")
    p.add_argument("--startup-timeout", type=float, default=120.0, help="seconds for /health")
    p.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    args = p.parse_args(argv)
    _validate(p, args)
    return args


def _validate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    positive = ("events", "batch", "clients", "duration", "workers", "lag_commands")
    for name in (*positive, "lag_clients", "sql_repeat", "sql_max_seconds", "timeout"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    args.rebuilds = [r.strip() for r in args.rebuilds.split(",") if r.strip()]
    unknown = set(args.rebuilds) - set(REBUILD_CHOICES) - {"all"}
    if unknown:
        p.error(f"--rebuilds: unknown {sorted(unknown)}")
    try:
        check_loopback_pg(args.pg_url)
    except BenchError as exc:
        p.error(str(exc))


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Finally blocks then stop the server and drop the database.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    result = run(args)
    print(report(result))
    if args.json is not None:
        write_json(args.json, result)
        console.print(f"JSON written to {args.json}")
    return 1 if result.failure else 0


if __name__ == "__main__":
    sys.exit(main())
