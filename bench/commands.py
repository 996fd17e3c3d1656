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
import multiprocessing as mp
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any, TypeVar

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from bench.load import DRAIN_GRACE_S, REQUEST_TIMEOUT_S, GenConfig, generator_main
from bench.raw import RawResult, raw_ceiling
from bench.report import RunResult, merge, report, summary, write_json
from bench.service import (
    BenchError,
    Server,
    check_loopback_pg,
    fresh_database,
    running_server,
    server_cpu_seconds,
)

# Spawned generator processes need a moment to import aiohttp before the
# shared start instant, otherwise the first client would start late.
SPAWN_LEAD_S = 2.0

console = Console(stderr=True)


# --------------------------------------------------------------------------
# One HTTP run (parent side)
# --------------------------------------------------------------------------


T = TypeVar("T")


@dataclass(frozen=True)
class LoadPlan:
    clients: int
    gen_procs: int
    warmup: float
    duration: float


def run_backend(
    backend: str,
    round_no: int,
    args: argparse.Namespace,
    progress: Progress,
    auth: bool = True,
    provider_worker: bool = True,
) -> RunResult:
    label = ", ".join(
        [backend]
        + ([] if auth else ["auth off"])
        + ([] if provider_worker else ["provider worker off"])
    )
    result = RunResult(label, round_no, args.clients, args.workers)
    env = {} if auth else {"MODELLEDGER_AUTH": "false"}
    if not provider_worker:
        env["MODELLEDGER_PROVIDER_WORKER"] = "false"
    try:
        with tempfile.TemporaryDirectory(prefix="modelledger-bench-") as tmp:
            _run_in(backend, Path(tmp), args, result, progress, env)
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
    extra_env: dict[str, str],
) -> None:
    with (
        _store_url(backend, args.pg_url, tmp) as db_url,
        running_server(db_url, args.workers, tmp, args.startup_timeout, extra_env) as server,
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
    merge(result, outcomes, plan.duration, server_cpu)
    progress.update(task, completed=plan.warmup + plan.duration, stats=summary(result))


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
    p.add_argument(
        "--auth",
        default="on",
        help="comma list of on,off: with API keys (the default) and/or MODELLEDGER_AUTH=false, "
        "side by side in each round",
    )
    p.add_argument(
        "--provider-worker",
        default="on",
        help="comma list of on,off: with the provider worker inside serve (the default) "
        "and/or MODELLEDGER_PROVIDER_WORKER=false, run side by side",
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
    args.auth = [a.strip() for a in args.auth.split(",") if a.strip()]
    if not args.auth or set(args.auth) - {"on", "off"}:
        p.error("--auth: a comma list of on and/or off")
    args.provider_worker = [w.strip() for w in args.provider_worker.split(",") if w.strip()]
    if not args.provider_worker or set(args.provider_worker) - {"on", "off"}:
        p.error("--provider-worker: a comma list of on and/or off")
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


def round_order(backends: list[T], round_no: int) -> list[T]:
    """Reverse every other round (ABBA) so drift does not favour one backend."""
    return backends if round_no % 2 == 1 else list(reversed(backends))


def variants(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(backend, auth, provider worker), each backend's settings next to each other."""
    return [
        (backend, auth, worker)
        for backend in args.backends
        for auth in args.auth
        for worker in args.provider_worker
    ]


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
            for backend, auth, worker in round_order(variants(args), round_no):
                runs.append(
                    run_backend(backend, round_no, args, progress, auth == "on", worker == "on")
                )
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
