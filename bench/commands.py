"""Command-throughput benchmark for the ModelLedger HTTP service.

Usage (from the repository root)::

    .venv/bin/python -m bench.commands --backends sqlite,postgres \
        --clients 64 --duration 20 --workers 1 --repeat 2 --json var/bench.json

Each run starts ``python -m modelledger serve`` on a free loopback port with a
fresh store, drives it with N concurrent clients looping
create -> train -> complete -> deploy, and stops it again.  When PostgreSQL is
benchmarked, a raw ceiling (single-row INSERT+COMMIT through psycopg on one
connection) is measured on the same server so the HTTP number can be read as a
fraction of what the database alone can commit.

Progress goes to stderr; the Markdown report goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psutil  # type: ignore[import-untyped]
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

HOST = "127.0.0.1"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
BENCH_DB = "modelledger_bench"
SERVER_ARGS = ("-m", "modelledger", "serve")  # run with this interpreter (the venv's)
REPO_ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("create", "train", "complete", "deploy")
JSON_HEADERS = {"Content-Type": "application/json"}
# A request slower than this is an error; it also bounds how long a run can
# overrun its window while in-flight requests drain.
REQUEST_TIMEOUT_S = 30.0
DRAIN_GRACE_S = 10.0
# Spawned generator processes need a moment to import aiohttp before the
# shared start instant, otherwise the first client would start late.
SPAWN_LEAD_S = 2.0
TICK_S = 0.5
PROBE_INTERVAL_S = 0.05
STATE_BYTES = os.urandom(300)  # ~300 B like a serialized event; random, so no dedup tricks

console = Console(stderr=True)


# --------------------------------------------------------------------------
# Load generator (runs in child processes)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GenConfig:
    """What one generator process needs; monotonic clock is system-wide on Linux."""

    index: int
    base_url: str
    clients: int
    client_offset: int
    start_at: float
    measure_at: float
    stop_at: float


@dataclass
class Recorder:
    """Collects outcomes; only completions inside the window count."""

    measure_at: float
    stop_at: float
    latencies: dict[str, array[float]] = field(
        default_factory=lambda: {c: array("d") for c in COMMANDS}
    )
    errors: Counter[str] = field(default_factory=Counter)
    outside_errors: Counter[str] = field(default_factory=Counter)
    # GET /api/info latencies: an async endpoint with no I/O, so its latency is
    # how long the server's event loop keeps requests waiting under load.
    probe: array[float] = field(default_factory=lambda: array("d"))
    live_ok: int = 0
    live_errors: int = 0

    def record(self, kind: str, started: float, outcome: str | None) -> None:
        finished = time.monotonic()
        if outcome is None:
            self.live_ok += 1
        else:
            self.live_errors += 1
        in_window = self.measure_at <= finished <= self.stop_at
        if outcome is None:
            if in_window:
                self.latencies[kind].append(finished - started)
        elif in_window:
            self.errors[f"{kind}:{outcome}"] += 1
        else:
            # Warm-up and drain failures do not skew the numbers but are shown.
            self.outside_errors[f"{kind}:{outcome}"] += 1


async def _post(
    session: aiohttp.ClientSession,
    rec: Recorder,
    kind: str,
    url: str,
    body: dict[str, Any],
) -> dict[str, Any] | None:
    """One command; returns the JSON body on 2xx, else records why and returns None."""
    if time.monotonic() >= rec.stop_at:
        return None
    started = time.monotonic()
    try:
        async with session.post(url, data=json.dumps(body), headers=JSON_HEADERS) as resp:
            status, raw = resp.status, await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        rec.record(kind, started, type(exc).__name__)
        await asyncio.sleep(0.05)  # a dead server must not turn this into a CPU spin
        return None
    if not 200 <= status < 300:
        rec.record(kind, started, str(status))
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        rec.record(kind, started, "bad-json")
        return None
    rec.record(kind, started, None)
    return data


def _field(data: dict[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    return None if value is None else str(value)


async def _cycle(session: aiohttp.ClientSession, rec: Recorder, base: str, name: str) -> None:
    """create -> train -> complete -> deploy; a failed step abandons the chain."""
    created = await _post(
        session,
        rec,
        "create",
        f"{base}/api/v1/models",
        {
            "name": name,
            "project": "bench",
            "task": "classification",
            "framework": "sklearn",
            "description": "benchmark model",
            "tags": ["bench"],
        },
    )
    model_id = _field(created, "id")
    if model_id is None:
        return
    model_url = f"{base}/api/v1/models/{model_id}"
    trained = await _post(
        session,
        rec,
        "train",
        f"{model_url}/train",
        {
            "dataset": "datasets/bench.csv",
            "hyperparameters": {"lr": 0.01, "epochs": 3},
        },
    )
    run_id = _field(trained, "run_id")
    if run_id is None:
        return
    completed = await _post(
        session,
        rec,
        "complete",
        f"{model_url}/training-runs/{run_id}/complete",
        {"metrics": {"accuracy": 0.91, "loss": 0.2}},
    )
    if completed is not None:
        await _post(session, rec, "deploy", f"{model_url}/deploy", {"environment": "production"})


async def _client(session: aiohttp.ClientSession, rec: Recorder, cfg: GenConfig, cid: int) -> None:
    cycle = 0
    while time.monotonic() < rec.stop_at:
        name = f"bench-{os.getpid()}-{cid}-{cycle}"
        await _cycle(session, rec, cfg.base_url, name)
        cycle += 1


async def _probe(rec: Recorder, cfg: GenConfig) -> None:
    """Every PROBE_INTERVAL_S, time one GET /api/info (not counted as a command).

    Its own session: the clients' connection pool is always full, and waiting
    for a free connection there would be measured as server latency.
    """
    async with aiohttp.ClientSession() as session:
        await _probe_loop(session, rec, cfg)


async def _probe_loop(session: aiohttp.ClientSession, rec: Recorder, cfg: GenConfig) -> None:
    while time.monotonic() < rec.stop_at:
        started = time.monotonic()
        try:
            async with session.get(f"{cfg.base_url}/api/info") as resp:
                await resp.read()
                ok = resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        finished = time.monotonic()
        if ok and rec.measure_at <= finished <= rec.stop_at:
            rec.probe.append(finished - started)
        await asyncio.sleep(PROBE_INTERVAL_S)


async def _ticker(rec: Recorder, cfg: GenConfig, queue: Any) -> None:
    """Cumulative counters for the parent's progress display."""
    while True:
        queue.put(("tick", cfg.index, rec.live_ok, rec.live_errors))
        await asyncio.sleep(TICK_S)


async def _generate(cfg: GenConfig, queue: Any) -> dict[str, Any]:
    rec = Recorder(cfg.measure_at, cfg.stop_at)
    connector = aiohttp.TCPConnector(limit=cfg.clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.sleep(max(0.0, cfg.start_at - time.monotonic()))
        ticker = asyncio.create_task(_ticker(rec, cfg, queue))
        cpu_start, cpu_stop = (
            _cpu_sample_at(cfg.measure_at),
            _cpu_sample_at(cfg.stop_at),
        )
        tasks = [
            asyncio.create_task(_client(session, rec, cfg, cfg.client_offset + i))
            for i in range(cfg.clients)
        ]
        if cfg.index == 0:
            tasks.append(asyncio.create_task(_probe(rec, cfg)))
        cpu_s = await cpu_stop - await cpu_start
        await _drain(tasks)
        ticker.cancel()
    return _gen_result(rec, cpu_s)


def _cpu_sample_at(instant: float) -> asyncio.Future[float]:
    """Process CPU time at `instant`, so warm-up and drain are not charged."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[float] = loop.create_future()
    delay = max(0.0, instant - time.monotonic())
    loop.call_later(delay, lambda: fut.set_result(time.process_time()))
    return fut


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    """Let in-flight requests finish (bounded), then cancel what is left."""
    _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + DRAIN_GRACE_S)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


def _gen_result(rec: Recorder, cpu_s: float) -> dict[str, Any]:
    return {
        "latencies": {k: v.tobytes() for k, v in rec.latencies.items()},
        "errors": dict(rec.errors),
        "outside_errors": dict(rec.outside_errors),
        "probe": rec.probe.tobytes(),
        "cpu_s": cpu_s,
    }


def generator_main(cfg: GenConfig, queue: Any) -> None:
    """Entry point of a generator process; always reports back on `queue`."""
    runner = _event_loop_runner()
    try:
        result = runner(_generate(cfg, queue))
        queue.put(("done", cfg.index, result))
    except BaseException:
        queue.put(("fail", cfg.index, traceback.format_exc()))


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]]:
    """uvloop when available: its event loop costs less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


# --------------------------------------------------------------------------
# Service lifecycle
# --------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A run could not be carried out (server did not start, bad option...)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_server(
    database_url: str, workers: int, workdir: Path, timeout_s: float
) -> Iterator[Server]:
    """Start the service with a fresh store; always stop it, even on Ctrl-C."""
    port = free_port()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MODELLEDGER_DATABASE_URL": database_url,
        "MODELLEDGER_PORT": str(port),
        "MODELLEDGER_WORKERS": str(workers),
        "MODELLEDGER_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        # Own session so SIGTERM reaches the uvicorn worker processes as well.
        proc = subprocess.Popen(
            [sys.executable, *SERVER_ARGS],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, port, log_path)
    try:
        wait_healthy(server, timeout_s)
        yield server
    finally:
        stop_server(proc)


def wait_healthy(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        if _health_ok(server.base_url):
            return
        time.sleep(0.2)
    raise BenchError(f"server not healthy after {timeout_s:.0f}s:\n{server.log_tail()}")


def _health_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (we created it), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    _reap_group(proc.pid)


def _reap_group(pgid: int) -> None:
    """Workers may outlive a parent that exited on SIGTERM; kill our leftovers."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def server_cpu_seconds(pid: int) -> float:
    """CPU of the server and its live workers (uvicorn forks/spawns them)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


# --------------------------------------------------------------------------
# PostgreSQL helpers
# --------------------------------------------------------------------------


def check_loopback_pg(pg_url: str) -> None:
    """The benchmark may only talk to this machine."""
    parts = urlsplit(pg_url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise BenchError("--pg-url must be a postgresql:// URL")
    host = conninfo_to_dict(pg_url).get("host")
    if host not in LOOPBACK_HOSTS:
        raise BenchError(f"--pg-url host must be one of {sorted(LOOPBACK_HOSTS)}, got {host!r}")


def with_database(pg_url: str, dbname: str) -> str:
    parts = urlsplit(pg_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def fresh_database(pg_url: str, dbname: str = BENCH_DB) -> Iterator[str]:
    """Create an empty database for one run and drop it afterwards."""
    _recreate(pg_url, dbname, create=True)
    try:
        yield with_database(pg_url, dbname)
    finally:
        _recreate(pg_url, dbname, create=False)


def _recreate(pg_url: str, dbname: str, create: bool) -> None:
    ident = sql.Identifier(dbname)
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        # FORCE: a killed server may leave sessions that would block the drop.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


# --------------------------------------------------------------------------
# Raw ceiling
# --------------------------------------------------------------------------

# Same shape as an event store's stored-events table: PK on the aggregate
# version plus a unique, ordered notification id.
RAW_DDL = """
CREATE TABLE stored_events (
    originator_id uuid NOT NULL,
    originator_version integer NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    notification_id bigserial NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX stored_events_notification_id_idx ON stored_events (notification_id);
"""
RAW_INSERT = (
    "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
    "VALUES (%s, %s, %s, %s)"
)
RAW_TOPIC = "modelledger.domain.model:Model.TrainingCompleted"


@dataclass
class RawResult:
    round: int
    rows: int
    seconds: float
    rows_per_s: float


def raw_ceiling(
    pg_url: str, seconds: float, max_rows: int, round_no: int, progress: Progress
) -> RawResult:
    """Single-row INSERT+COMMIT on one connection: what the DB alone can commit."""
    task = progress.add_task(f"[raw pg #{round_no}] INSERT+COMMIT", total=seconds, stats="")
    with fresh_database(pg_url) as db_url, psycopg.connect(db_url) as conn:
        conn.execute(RAW_DDL)
        conn.commit()
        rows, elapsed = _insert_loop(conn, seconds, max_rows, progress, task)
    progress.update(task, completed=seconds)
    return RawResult(round_no, rows, elapsed, rows / elapsed if elapsed > 0 else 0.0)


def _insert_loop(
    conn: psycopg.Connection[Any],
    seconds: float,
    max_rows: int,
    progress: Progress,
    task: TaskID,
) -> tuple[int, float]:
    start = time.monotonic()
    deadline = start + seconds
    rows = 0
    while rows < max_rows and time.monotonic() < deadline:
        # A fresh aggregate per 4 rows mimics create/train/complete/deploy.
        if rows % 4 == 0:
            originator = uuid.uuid4()
        conn.execute(RAW_INSERT, (originator, rows % 4 + 1, RAW_TOPIC, STATE_BYTES), prepare=True)
        conn.commit()
        rows += 1
        if rows % 500 == 0:
            now = time.monotonic()
            progress.update(
                task, completed=now - start, stats=f"{rows / (now - start):,.0f} rows/s"
            )
    return rows, time.monotonic() - start


# --------------------------------------------------------------------------
# One HTTP run (parent side)
# --------------------------------------------------------------------------


@dataclass
class RunResult:
    backend: str
    round: int
    clients: int
    workers: int
    commands: int = 0
    seconds: float = 0.0
    commands_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    outside_errors: dict[str, int] = field(default_factory=dict)
    generator_cpu_pct: float = 0.0
    server_cpu_pct: float = 0.0
    loop_p50_ms: float = math.nan
    loop_p99_ms: float = math.nan
    per_command: dict[str, dict[str, float]] = field(default_factory=dict)
    failure: str | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class LoadPlan:
    clients: int
    gen_procs: int
    warmup: float
    duration: float


def run_backend(
    backend: str, round_no: int, args: argparse.Namespace, progress: Progress
) -> RunResult:
    result = RunResult(backend, round_no, args.clients, args.workers)
    try:
        with tempfile.TemporaryDirectory(prefix="modelledger-bench-") as tmp:
            _run_in(backend, Path(tmp), args, result, progress)
    except (BenchError, psycopg.Error, OSError) as exc:
        result.failure = f"{type(exc).__name__}: {exc}"
        console.print(f"[red]{backend} run {round_no} failed:[/red] {result.failure}")
    return result


def _run_in(
    backend: str,
    tmp: Path,
    args: argparse.Namespace,
    result: RunResult,
    progress: Progress,
) -> None:
    with (
        _store_url(backend, args.pg_url, tmp) as db_url,
        running_server(db_url, args.workers, tmp, args.startup_timeout) as server,
    ):
        _drive(server, result, _plan(args), progress)


def _plan(args: argparse.Namespace) -> LoadPlan:
    return LoadPlan(args.clients, args.gen_procs, args.warmup, args.duration)


@contextmanager
def _store_url(backend: str, pg_url: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'ml.sqlite'}"
    else:
        with fresh_database(pg_url) as url:
            yield url


def _drive(server: Server, result: RunResult, plan: LoadPlan, progress: Progress) -> None:
    label = f"[{result.backend} #{result.round}]"
    task = progress.add_task(label, total=plan.warmup + plan.duration, stats="starting")
    start_at = time.monotonic() + SPAWN_LEAD_S
    measure_at, stop_at = start_at + plan.warmup, start_at + plan.warmup + plan.duration
    configs = _gen_configs(server.base_url, plan, start_at, measure_at, stop_at)
    ctx = mp.get_context("spawn")  # no fork: the parent runs rich's refresh thread
    queue = ctx.Queue()
    procs = [ctx.Process(target=generator_main, args=(c, queue), daemon=True) for c in configs]
    for proc in procs:
        proc.start()
    try:
        outcomes, server_cpu = _collect(
            queue,
            procs,
            server,
            (start_at, measure_at, stop_at),
            _ProgressSink(progress, task, label),
        )
    finally:
        _stop_generators(procs)
    _merge(result, outcomes, plan.duration, server_cpu)
    progress.update(task, completed=plan.warmup + plan.duration, stats=_summary(result))


def _gen_configs(
    base_url: str, plan: LoadPlan, start_at: float, measure_at: float, stop_at: float
) -> list[GenConfig]:
    procs = max(1, min(plan.gen_procs, plan.clients))
    shares = [plan.clients // procs + (1 if i < plan.clients % procs else 0) for i in range(procs)]
    offsets = [sum(shares[:i]) for i in range(procs)]
    return [
        GenConfig(i, base_url, shares[i], offsets[i], start_at, measure_at, stop_at)
        for i in range(procs)
    ]


def _collect(
    queue: Any,
    procs: list[Any],
    server: Server,
    times: tuple[float, float, float],
    update: Callable[[dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], float]:
    """Relay ticks to the progress bar until every generator reported back."""
    start_at, measure_at, stop_at = times
    hard_deadline = stop_at + REQUEST_TIMEOUT_S + DRAIN_GRACE_S + 30
    outcomes: dict[int, dict[str, Any]] = {}
    ticks: dict[int, tuple[int, int]] = {}
    cpu = _ServerCpu(server.proc.pid, measure_at, stop_at)
    while len(outcomes) < len(procs):
        if time.monotonic() > hard_deadline:
            raise BenchError("load generator did not finish in time")
        cpu.poll()
        msg = _get(queue)
        if msg is None:
            _check_alive(procs, outcomes)
        _handle(msg, outcomes, ticks)
        update(_progress_state(ticks, start_at, measure_at, stop_at))
    return list(outcomes.values()), cpu.seconds()


def _check_alive(procs: list[Any], outcomes: dict[int, dict[str, Any]]) -> None:
    """A generator that died silently would otherwise stall us to the deadline.

    Only called after the queue stayed empty for a while: a child flushes its
    queue before exiting, so a dead child with no outcome sent none.
    """
    for index, proc in enumerate(procs):
        if index not in outcomes and not proc.is_alive():
            raise BenchError(f"load generator {index} exited with code {proc.exitcode}")


def _get(queue: Any) -> tuple[Any, ...] | None:
    try:
        return tuple(queue.get(timeout=0.25))
    except Empty:
        return None


def _handle(
    msg: tuple[Any, ...] | None,
    outcomes: dict[int, dict[str, Any]],
    ticks: dict[int, tuple[int, int]],
) -> None:
    if msg is None:
        return
    kind, index, *payload = msg
    if kind == "tick":
        ticks[index] = (payload[0], payload[1])
    elif kind == "done":
        outcomes[index] = payload[0]
    else:
        raise BenchError(f"load generator {index} failed:\n{payload[0]}")


def _progress_state(
    ticks: dict[int, tuple[int, int]],
    start_at: float,
    measure_at: float,
    stop_at: float,
) -> dict[str, Any]:
    now = time.monotonic()
    ok = sum(t[0] for t in ticks.values())
    err = sum(t[1] for t in ticks.values())
    phase = "spawning" if now < start_at else "warm-up" if now < measure_at else "measuring"
    if now >= stop_at:
        phase = "draining"
    elapsed = min(max(0.0, now - start_at), stop_at - start_at)
    return {"completed": elapsed, "stats": f"{phase}  ok={ok:,}  errors={err:,}"}


class _ProgressSink:
    """Feeds the live bar; without a terminal (CI logs) prints a line every 5 s."""

    def __init__(self, progress: Progress, task: TaskID, label: str) -> None:
        self.progress, self.task, self.label = progress, task, label
        self.next_line = time.monotonic()

    def __call__(self, state: dict[str, Any]) -> None:
        self.progress.update(self.task, **state)
        if not console.is_terminal and time.monotonic() >= self.next_line:
            self.next_line += 5.0
            console.print(f"{self.label} {state['completed']:.0f}s {state['stats']}", markup=False)


class _ServerCpu:
    """Samples server CPU when the parent's clock crosses the window edges."""

    def __init__(self, pid: int, measure_at: float, stop_at: float) -> None:
        self.pid, self.edges = pid, [measure_at, stop_at]
        self.samples: list[float] = []

    def poll(self) -> None:
        if len(self.samples) < 2 and time.monotonic() >= self.edges[len(self.samples)]:
            self.samples.append(server_cpu_seconds(self.pid))

    def seconds(self) -> float:
        self.poll()
        return self.samples[1] - self.samples[0] if len(self.samples) == 2 else 0.0


def _stop_generators(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()  # our own child, by its handle
            proc.join(timeout=5)


# --------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no data."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _merge(
    result: RunResult, outcomes: list[dict[str, Any]], window: float, server_cpu: float
) -> None:
    per_kind: dict[str, list[float]] = {k: [] for k in COMMANDS}
    errors: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for out in outcomes:
        for kind, raw in out["latencies"].items():
            per_kind[kind].extend(array("d", raw))
        errors.update(out["errors"])
        outside.update(out["outside_errors"])
    all_lat = sorted(x for values in per_kind.values() for x in values)
    result.commands, result.seconds = len(all_lat), window
    result.commands_per_s = len(all_lat) / window
    result.p50_ms, result.p99_ms = (
        percentile(all_lat, 0.5) * 1e3,
        percentile(all_lat, 0.99) * 1e3,
    )
    result.errors, result.outside_errors = dict(errors), dict(outside)
    result.generator_cpu_pct = 100 * sum(o["cpu_s"] for o in outcomes) / window
    result.server_cpu_pct = 100 * server_cpu / window
    result.per_command = {k: _stats(sorted(v), window) for k, v in per_kind.items()}
    probe = sorted(x for out in outcomes for x in array("d", out.get("probe", b"")))
    result.loop_p50_ms = percentile(probe, 0.5) * 1e3 if probe else math.nan
    result.loop_p99_ms = percentile(probe, 0.99) * 1e3 if probe else math.nan


def _stats(values: list[float], window: float) -> dict[str, float]:
    return {
        "count": len(values),
        "per_s": len(values) / window,
        "p50_ms": percentile(values, 0.5) * 1e3,
        "p99_ms": percentile(values, 0.99) * 1e3,
    }


def errors_by_status(errors: dict[str, int]) -> dict[str, int]:
    """'create:500' -> '500': the table groups by status, JSON keeps the command."""
    grouped: Counter[str] = Counter()
    for key, count in errors.items():
        grouped[key.split(":", 1)[-1]] += count
    return dict(grouped)


def _summary(result: RunResult) -> str:
    return (
        f"{result.commands_per_s:,.0f} cmd/s  p50={result.p50_ms:.1f}ms  "
        f"p99={result.p99_ms:.1f}ms  errors={result.error_count}"
    )


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _error_cell(result: RunResult) -> str:
    if not result.errors:
        return "0"
    detail = ", ".join(f"{k} x{v}" for k, v in sorted(errors_by_status(result.errors).items()))
    return f"{result.error_count} ({detail})"


def markdown_table(runs: list[RunResult]) -> str:
    lines = [
        (
            "| backend | run | clients | workers | commands/s | p50 ms | p99 ms | errors "
            "| generator CPU% | server CPU% | probe p50/p99 ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        if r.failure:
            lines.append(
                f"| {r.backend} | {r.round} | {r.clients} | {r.workers} | FAILED "
                "| - | - | - | - | - | - |"
            )
            continue
        lines.append(
            f"| {r.backend} | {r.round} | {r.clients} | {r.workers} | {r.commands_per_s:,.1f} "
            f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {_error_cell(r)} "
            f"| {r.generator_cpu_pct:.0f} | {r.server_cpu_pct:.0f} "
            f"| {r.loop_p50_ms:.1f}/{r.loop_p99_ms:.1f} |"
        )
    return "\n".join(lines)


def ratio(runs: list[RunResult], raws: list[RawResult]) -> float | None:
    """Median PostgreSQL commands/s over median raw rows/s."""
    pg = [r.commands_per_s for r in runs if r.backend == "postgres" and not r.failure]
    raw = [r.rows_per_s for r in raws if r.rows_per_s > 0]
    if not pg or not raw:
        return None
    return statistics.median(pg) / statistics.median(raw)


def report(runs: list[RunResult], raws: list[RawResult]) -> str:
    parts = [markdown_table(runs), ""]
    for r in runs:
        if r.outside_errors:
            parts.append(
                f"- {r.backend} run {r.round}: errors outside the window "
                f"(warm-up/drain) {r.outside_errors}"
            )
        if r.failure:
            parts.append(f"- {r.backend} run {r.round} FAILED: {r.failure.splitlines()[0]}")
    for raw in raws:
        parts.append(
            f"- Raw PostgreSQL ceiling run {raw.round} (single-row INSERT+COMMIT, "
            f"one psycopg connection): {raw.rows_per_s:,.1f} rows/s "
            f"({raw.rows:,} rows in {raw.seconds:.1f} s)"
        )
    value = ratio(runs, raws)
    if value is not None:
        parts.append(
            f"- Ratio HTTP commands/s on PostgreSQL / raw ceiling rows/s: **{value:.3f}**"
            " (medians over runs)"
        )
    parts.append(
        "- commands/s, p50 and p99 count only 2xx completions inside the measured "
        "window; CPU% is of one core (200% = both cores)."
    )
    return "\n".join(parts)


def write_json(
    path: Path, args: argparse.Namespace, runs: list[RunResult], raws: list[RawResult]
) -> None:
    config = {k: v for k, v in vars(args).items() if k != "json"}
    payload = {
        "config": config,
        "runs": [asdict(r) for r in runs],
        "raw_ceiling": [asdict(r) for r in raws],
        "ratio_pg_http_over_raw": ratio(runs, raws),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.commands", description=__doc__.splitlines()[0]
    )
    p.add_argument("--backends", default="sqlite,postgres", help="comma list of sqlite,postgres")
    p.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each run")
    p.add_argument("--workers", type=int, default=1, help="MODELLEDGER_WORKERS for the server")
    p.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of a loopback PostgreSQL server",
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds; backend order alternates")
    p.add_argument("--gen-procs", type=int, default=1, help="load-generator processes (1-2)")
    p.add_argument("--raw-duration", type=float, default=10.0, help="raw ceiling seconds")
    p.add_argument("--raw-max-rows", type=int, default=200_000, help="raw ceiling row cap")
    p.add_argument("--skip-raw", action="store_true", help="do not measure the raw ceiling")
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for /health",
    )
    p.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    args = p.parse_args(argv)
    _validate(p, args)
    return args


def _validate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgres"}
    if unknown or not args.backends:
        p.error(f"--backends: unknown {sorted(unknown)}; use sqlite and/or postgres")
    positive = (
        "clients",
        "duration",
        "workers",
        "repeat",
        "gen_procs",
        "raw_duration",
        "raw_max_rows",
    )
    for name in positive:
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    try:
        check_loopback_pg(args.pg_url)
    except BenchError as exc:
        p.error(str(exc))


def round_order(backends: list[str], round_no: int) -> list[str]:
    """Reverse every other round (ABBA) so drift does not favour one backend."""
    return backends if round_no % 2 == 1 else list(reversed(backends))


def run_all(args: argparse.Namespace) -> tuple[list[RunResult], list[RawResult]]:
    runs: list[RunResult] = []
    raws: list[RawResult] = []
    with Progress(
        # markup off: labels like "[sqlite #1]" are text, not rich style tags.
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}", markup=False),
        console=console,
    ) as progress:
        for round_no in range(1, args.repeat + 1):
            for backend in round_order(args.backends, round_no):
                runs.append(run_backend(backend, round_no, args, progress))
            if "postgres" in args.backends and not args.skip_raw:
                raws.append(
                    raw_ceiling(
                        args.pg_url,
                        args.raw_duration,
                        args.raw_max_rows,
                        round_no,
                        progress,
                    )
                )
    return runs, raws


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Turn SIGTERM into an exception so the finally blocks stop the server and
    # drop the benchmark database instead of leaving them behind.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    runs, raws = run_all(args)
    print(report(runs, raws))
    if args.json is not None:
        write_json(args.json, args, runs, raws)
        console.print(f"JSON written to {args.json}")
    return 1 if any(r.failure for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
