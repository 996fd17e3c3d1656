"""Resident memory of one API process serving a registry of N models on PostgreSQL.

Starts this tree's `modelledger serve` (MODELLEDGER_WORKERS=1, projections and provider worker
inside: the embedded default) on a fresh database, seeds N models over HTTP (a fraction trained,
with metrics), waits for the projections, gets every model by id and runs searches, statistics
and top-performing queries, sampling the server process tree's RSS every 0.2 s. Only HTTP and
the CLI are used: the same file measures any version of the code, side by side.

    python -m bench.api_memory --models 100000 \
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres --out /tmp/api_memory.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import ExitStack, asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import service
from bench.service import BenchError, Server

API = "/api/v1"
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SAMPLE_INTERVAL_S = 0.2
MIB = 2**20
WORDS = ("falcon", "otter", "maple", "quartz", "harbor", "ember", "lumen", "cobalt", "willow",
         "saffron", "tundra", "mosaic", "vertex", "nimbus", "juniper", "onyx")  # fmt: skip
TASKS = ("classification", "regression", "ranking", "segmentation", "translation")
FRAMEWORKS = ("pytorch", "sklearn", "xgboost", "tensorflow", "jax")
PROJECTS = tuple(f"project-{i}" for i in range(8))
TEAMS = tuple(f"team-{i}" for i in range(20))
RETRY_STATUSES = {429, 502, 503, 504}
console = Console()


class TreeSampler:
    """Samples the RSS of a process and its descendants in a thread."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, int, int]] = []  # (seconds, bytes, models seeded)
        self.seeded = 0
        self.max_processes = 0
        self.latest = 0.0  # MiB
        self.start = time.monotonic()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> float:
        """The tree's RSS now, in MiB (also recorded)."""
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0
        for proc in procs:
            with suppress(psutil.Error):  # a worker may just have exited
                total += int(proc.memory_info().rss)
        self.max_processes = max(self.max_processes, len(procs))
        self.samples.append((time.monotonic() - self.start, total, self.seeded))
        self.latest = total / MIB
        return self.latest

    def peak_since(self, since: float) -> float:
        """Highest RSS (MiB) sampled since ``since`` (a time.monotonic() value)."""
        after = since - self.start
        return max((rss for t, rss, _ in self.samples if t >= after), default=0) / MIB

    def _run(self) -> None:
        while not self._stopping.wait(SAMPLE_INTERVAL_S):
            self.sample()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)


@dataclass
class Counts:
    requests: int = 0
    failures: int = 0
    first_failure: str = ""

    def failed(self, what: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or what


async def call(
    session: aiohttp.ClientSession, counts: Counts, method: str, path: str,
    body: Any = None, params: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """One request (retried on 429/5xx-unavailable and connection errors); None on failure."""
    for attempt in range(5):
        counts.requests += 1
        try:
            async with session.request(method, path, json=body, params=params) as response:
                if response.status < 300:
                    return await response.json(content_type=None)
                what = f"{method} {path}: {response.status} {(await response.text())[:200]}"
                if response.status not in RETRY_STATUSES:
                    break
        except (aiohttp.ClientError, TimeoutError) as error:
            what = f"{method} {path}: {error!r}"
        await asyncio.sleep(0.5 * 2**attempt)
    counts.failed(what)
    return None


@asynccontextmanager
async def client(server: Server, concurrency: int) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        server.base_url, headers=service.auth_headers(), connector=connector, timeout=timeout
    ) as session:
        yield session


async def pool(jobs: Iterable[Any], worker: Callable[[Any], Awaitable[None]], size: int) -> None:
    """Run ``worker`` on every job, ``size`` at a time."""
    queue = iter(jobs)

    async def loop() -> None:
        for job in queue:  # one shared iterator: each job is taken once
            await worker(job)

    await asyncio.gather(*(loop() for _ in range(size)))


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rss]:>7.1f} MiB"), TimeElapsedColumn(), console=console,
    )  # fmt: skip


def model_body(i: int) -> dict[str, Any]:
    return {
        "name": f"{WORDS[i % len(WORDS)]}-{i:07d}",
        "project": PROJECTS[i % len(PROJECTS)],
        "task": TASKS[i % len(TASKS)],
        "framework": FRAMEWORKS[(i // 3) % len(FRAMEWORKS)],
        "description": f"{WORDS[i % len(WORDS)]} model number {i} for the memory benchmark",
        "tags": [TEAMS[i % len(TEAMS)], f"wave-{i % 7}"],
        "configuration": {"layers": 2 + i % 6, "hidden": 64 * (1 + i % 8), "dropout": 0.1},
        "owner": f"owner-{i % 50}@example.com",
    }


async def register(
    session: aiohttp.ClientSession, counts: Counts, i: int, trained: float
) -> str | None:
    """Register model ``i``; for a fraction ``trained`` of them (the same on every run),
    train it and complete the run with metrics."""
    rnd = random.Random(i)
    created = await call(session, counts, "POST", f"{API}/models", model_body(i))
    if created is None or rnd.random() >= trained:
        return None if created is None else str(created["id"])
    model = f"{API}/models/{created['id']}"
    train = {"dataset": f"s3://datasets/bench/{i}.parquet", "hyperparameters": {"lr": 0.001}}
    run = await call(session, counts, "POST", f"{model}/train", train)
    if run is not None:
        metrics = {"accuracy": round(rnd.random(), 6), "loss": round(rnd.random(), 6),
                   "f1": round(rnd.random(), 6)}  # fmt: skip
        done = {"metrics": metrics, "artifact_uri": f"s3://models/bench/{i}"}
        await call(session, counts, "POST", f"{model}/training-runs/{run['run_id']}/complete", done)
    return str(created["id"])


async def seed(
    server: Server, sampler: TreeSampler, args: argparse.Namespace, counts: Counts
) -> list[str]:
    ids: list[str] = []
    with progress_bar() as bar:
        task = bar.add_task("seeding", total=args.models, rss=0.0)

        async def one(i: int) -> None:
            found = await register(session, counts, i, args.trained)
            if found is not None:
                ids.append(found)
            sampler.seeded += 1
            bar.update(task, advance=1, rss=sampler.latest)

        async with client(server, args.concurrency) as session:
            await pool(range(args.models), one, args.concurrency)
    return ids


async def wait_caught_up(server: Server, timeout_s: float) -> None:
    """Until every projection is at the log's head (GET /api/v1/admin/projections)."""
    counts = Counts()
    deadline = time.monotonic() + timeout_s
    async with client(server, 1) as session:
        while time.monotonic() < deadline:
            report = await call(session, counts, "GET", f"{API}/admin/projections") or []
            failed = [p for p in report if p.get("status") == "failed"]
            if failed:
                raise BenchError(f"projection failed: {failed[0]}")
            if report and all(p.get("lag") == 0 for p in report):
                return
            await asyncio.sleep(1.0)
    raise BenchError(f"projections not caught up after {timeout_s:.0f}s")


def queries() -> list[tuple[str, dict[str, Any]]]:
    """Searches, statistics and top-performing requests (each a path and its parameters)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for word in WORDS:
        found.append((f"{API}/models/search", {"q": word, "limit": 100}))
    for team in TEAMS:
        found.append((f"{API}/models/search", {"tag": team, "limit": 50}))
    for project in PROJECTS:
        found.append((f"{API}/models", {"project": project, "sort": "name", "limit": 100}))
        found.append((f"{API}/models/statistics", {"project": project}))
        found.append((f"{API}/models/top-performing", {"metric": "accuracy", "project": project}))
    for task in TASKS:
        found.append((f"{API}/models/top-performing", {"metric": "f1", "task": task, "limit": 25}))
        found.append((f"{API}/models/search", {"task": task, "metric": "accuracy",
                                                "min_value": 0.9, "limit": 100}))  # fmt: skip
    found.append((f"{API}/models/statistics", {}))
    return found


async def read(
    server: Server, sampler: TreeSampler, ids: list[str], counts: Counts, concurrency: int
) -> None:
    asked: list[tuple[str, dict[str, Any]]] = [(f"{API}/models/{i}", {}) for i in ids]
    asked += queries()
    with progress_bar() as bar:
        task = bar.add_task("reading", total=len(asked), rss=0.0)

        async def one(job: tuple[str, dict[str, Any]]) -> None:
            await call(session, counts, "GET", job[0], params=job[1] or None)
            bar.update(task, advance=1, rss=sampler.latest)

        async with client(server, concurrency) as session:
            await pool(asked, one, concurrency)


@dataclass
class Result:
    models_asked: int
    models_registered: int
    trained_fraction: float
    server_env: dict[str, str]
    rss_start_mib: float = 0.0
    rss_peak_seeding_mib: float = 0.0
    rss_after_seeding_mib: float = 0.0
    rss_peak_reads_mib: float = 0.0
    rss_end_mib: float = 0.0
    seed_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    read_seconds: float = 0.0
    seeding: Counts = field(default_factory=Counts)
    reading: Counts = field(default_factory=Counts)
    max_processes: int = 0
    projector_rss_end_mib: float | None = None  # `modelledger project`, when apart
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # s, MiB, models


async def seed_phase(server: Server, sampler: TreeSampler, args: Any, result: Result) -> list[str]:
    began = time.monotonic()
    ids = await seed(server, sampler, args, result.seeding)
    seeded = time.monotonic()
    await wait_caught_up(server, args.catch_up_timeout)
    result.seed_seconds, result.catch_up_seconds = seeded - began, time.monotonic() - seeded
    result.rss_peak_seeding_mib = sampler.peak_since(began)
    result.rss_after_seeding_mib = sampler.sample()
    result.models_registered = len(ids)
    return ids


async def read_phase(
    server: Server, sampler: TreeSampler, ids: list[str], args: Any, result: Result
) -> None:
    began = time.monotonic()
    await read(server, sampler, ids, result.reading, args.read_concurrency)
    result.read_seconds = time.monotonic() - began
    result.rss_peak_reads_mib = sampler.peak_since(began)


async def measure(server: Server, args: argparse.Namespace, result: Result) -> None:
    sampler = TreeSampler(server.proc.pid)
    try:
        await asyncio.sleep(args.settle)
        result.rss_start_mib = sampler.sample()
        ids = await seed_phase(server, sampler, args, result)
        await read_phase(server, sampler, ids, args, result)
        await asyncio.sleep(args.settle)
        result.rss_end_mib = sampler.sample()
    finally:
        sampler.close()
        result.max_processes = sampler.max_processes
        result.samples = [(round(t, 1), round(b / MIB, 1), n) for t, b, n in sampler.samples]


def server_env(pairs: list[str]) -> dict[str, str]:
    env = {"MODELLEDGER_LOG_LEVEL": "warning"}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("MODELLEDGER_"):
            raise BenchError(f"--env takes MODELLEDGER_NAME=value, got {pair!r}")
        env[name] = value
    return env


def run(args: argparse.Namespace) -> Result:
    service.check_loopback_pg(args.pg_url)
    env = server_env(args.env)
    if args.projections_apart:  # the API process alone: `modelledger project` runs them
        env["MODELLEDGER_PROJECTIONS"] = "false"
    result = Result(args.models, 0, args.trained, env)
    dbname = f"modelledger_api_memory_{os.getpid()}"
    with (
        tempfile.TemporaryDirectory(prefix="api-memory-") as workdir,
        service.fresh_database(args.pg_url, dbname) as database_url,
        ExitStack() as apart,
    ):
        if args.projections_apart:
            projector = apart.enter_context(
                service.running_server(
                    database_url, 1, Path(workdir) / "p", 120.0, extra_env=env,
                    command=("project",),
                )
            )  # fmt: skip
        server = apart.enter_context(
            service.running_server(database_url, 1, Path(workdir), 120.0, extra_env=env)
        )
        try:
            asyncio.run(measure(server, args, result))
        except BaseException:
            console.print(f"[red]server log tail:[/red]\n{server.log_tail()}")
            raise
        if args.projections_apart:
            rss = psutil.Process(projector.proc.pid).memory_info().rss
            result.projector_rss_end_mib = rss / 2**20
    return result


def report(result: Result) -> None:
    table = Table(title=f"API process RSS, {result.models_registered:,} models (PostgreSQL)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("RSS at start", f"{result.rss_start_mib:.1f} MiB"),
        ("RSS peak while seeding", f"{result.rss_peak_seeding_mib:.1f} MiB"),
        ("RSS after seeding (caught up)", f"{result.rss_after_seeding_mib:.1f} MiB"),
        ("RSS peak during reads", f"{result.rss_peak_reads_mib:.1f} MiB"),
        ("RSS at the end", f"{result.rss_end_mib:.1f} MiB"),
        ("seeding", f"{result.seed_seconds:.0f} s, {result.seeding.requests:,} requests"),
        ("projections catching up after", f"{result.catch_up_seconds:.0f} s"),
        ("reads", f"{result.read_seconds:.0f} s, {result.reading.requests:,} requests"),
        ("failed requests", f"{result.seeding.failures + result.reading.failures}"),
        ("server processes", f"{result.max_processes}"),
    ):
        table.add_row(label, value)
    if result.projector_rss_end_mib is not None:
        table.add_row("`project` process RSS at the end", f"{result.projector_rss_end_mib:.1f} MiB")
    console.print(table)
    if failure := result.seeding.first_failure or result.reading.first_failure:
        console.print(f"[yellow]first failure:[/yellow] {failure}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api_memory", description=__doc__)
    add = parser.add_argument
    add("--models", type=int, default=100_000)
    add("--pg-url", default=PG_URL, help="a maintenance database (the run makes its own)")
    add("--out", type=Path, required=True, help="where the JSON goes")
    add("--trained", type=float, default=0.3, help="fraction of models trained, with metrics")
    add("--concurrency", type=int, default=48, help="requests at once while seeding")
    add("--read-concurrency", type=int, default=32, help="requests at once while reading")
    add("--settle", type=float, default=3.0, help="seconds idle before the start and end samples")
    add("--catch-up-timeout", type=float, default=1800.0)
    add("--projections-apart", action="store_true",
        help="run the projections in their own `modelledger project` process")  # fmt: skip
    add("--env", action="append", default=[], metavar="MODELLEDGER_X=V",
        help="a server setting (repeatable), e.g. MODELLEDGER_ANSWER_CACHE_MB=0")  # fmt: skip
    args = parser.parse_args(argv)
    if args.models < 1 or not 0 <= args.trained <= 1:
        parser.error("--models must be positive and --trained within [0, 1]")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    report(result)
    args.out.write_text(json.dumps(asdict(result), indent=1) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
