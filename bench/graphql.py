"""GraphQL against REST: the same reads both ways, side by side, in one run.

Usage (from the repository root; PostgreSQL on loopback)::

    .venv/bin/python -m bench.graphql --models 100000 --duration 20 --clients 8
    .venv/bin/python -m bench.graphql --models 2000 --duration 5     # a quick try

A fresh database (dropped afterwards) gets about N models of realistic histories
(``bench.history``: versions, training runs, deployments; about 9.5 events a model),
appended in batches and projected. Then, for each answer-cache size asked for,
``modelledger serve`` (uvicorn; provider worker and webhook deliverer off) answers
the same closed-loop aiohttp clients:

(a) a model's page, random ids over the whole catalogue: REST's three calls
    (the model, its deployments, its last 20 events), one after another, against
    one GraphQL query asking for the same fields;
(b) a search (words, a task, a tag; 20 hits): REST's search against ``models(...)``.

Before timing, a few pages and searches are asked both ways and compared field by
field (the same models, versions, runs, deployments, events, hits and cursor).
Progress goes to stderr; the table and a Markdown snippet to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.graphql_load import (
    Call,
    Window,
    closed_loop,
    graphql_page,
    graphql_search,
    rest_page,
    rest_search,
    same_data,
    searches,
    server_cpu,
    summary,
)
from bench.history import Sample, generate_history
from bench.read_queries import DatabaseCpu, wait_caught_up
from bench.replay import run_projections
from bench.rss import RssSampler
from bench.service import (
    BenchError,
    Server,
    check_loopback_pg,
    fresh_database,
    maintenance_connection,
    running_server,
    vacuum_analyze,
)
from modelledger.bootstrap import bootstrap
from modelledger.settings import Settings
from projections.worker import PROJECTIONS, ensure_projections

console = Console(stderr=True)
# bench.history's stories average this many events (1,000,000 events made 104,815 models).
EVENTS_PER_MODEL = 9.54
WARMED_LINE = "answer cache warmed with"
QUIET = {"MODELLEDGER_PROVIDER_WORKER": "false", "MODELLEDGER_WEBHOOKS": "false"}

# (workload, API, requests per item, the call, what it is asked with)
WAYS: tuple[tuple[str, str, int, Call, str], ...] = (
    ("model page", "REST: 3 GETs, sequential", 3, rest_page, "ids"),
    ("model page", "GraphQL: 1 POST", 1, graphql_page, "ids"),
    ("search", "REST: 1 GET", 1, rest_search, "searches"),
    ("search", "GraphQL: 1 POST", 1, graphql_search, "searches"),
)


@dataclass
class Row:
    workload: str
    api: str
    calls: int
    cache_mb: int
    round: int
    figures: dict[str, float]


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description:36}", markup=False),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}", markup=False),
        console=console,
    )


# --------------------------------------------------------------------------
# Filling the database
# --------------------------------------------------------------------------


def fill(db_url: str, args: argparse.Namespace, progress: Progress) -> tuple[list[str], int]:
    """About ``args.models`` models as events, projected: every model id, and the count."""
    ledger = bootstrap(Settings(_env_file=None, database_url=db_url, projections=False))
    sample = Sample(args.models * 2, random.Random(args.seed))  # large enough to keep all
    rss = RssSampler()
    try:
        events = round(args.models * EVENTS_PER_MODEL)
        made = generate_history(ledger.registry, events, args.batch, args.seed, sample, progress)
        ensure_projections(ledger.write_engine)
        dbname = db_url.rsplit("/", 1)[1]
        caught = run_projections(
            ledger, PROJECTIONS, events, "catch-up", DatabaseCpu(dbname), rss, progress, 7200
        )
        console.print(
            f"{made.models:,} models, {made.events:,} events appended in {made.seconds:.0f} s, "
            f"projected in {caught.seconds:.0f} s"
        )
    finally:
        rss.close()
        ledger.close()
    with maintenance_connection(db_url) as conn:  # planner statistics, as autovacuum would
        vacuum_analyze(conn)
    return sample.ids, made.models


# --------------------------------------------------------------------------
# Serving and measuring
# --------------------------------------------------------------------------


def wait_warmed(server: Server, workers: int, timeout_s: float) -> None:
    """Until each worker has filled its answer cache at start: that fill would
    otherwise run inside the first measurement."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.log_path.read_text(errors="replace").count(WARMED_LINE) >= workers:
            return
        time.sleep(0.5)
    console.print(f"[yellow]no '{WARMED_LINE}' from every worker in {timeout_s:.0f} s[/yellow]")


def idle_cpu(server: Server, seconds: float = 3.0) -> float:
    """The server's CPU with no requests (% of a core): anything but ~0 runs beside the
    measurements too."""
    before = sum(server_cpu(server.proc.pid).values())
    time.sleep(seconds)
    idle = 100 * (sum(server_cpu(server.proc.pid).values()) - before) / seconds
    console.print(f"server CPU while idle: {idle:.1f}% of a core")
    return idle


def py_spy() -> str:
    """This environment's py-spy, found with the shell's PATH or beside this Python."""
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


@contextmanager
def profiled(server: Server, out: Path | None, label: str, seconds: float) -> Iterator[None]:
    """py-spy on the server and its workers while a load runs (collapsed stacks)."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{label}.txt"
    command = [py_spy(), "record", "--pid", str(server.proc.pid), "--subprocesses"]
    command += ["--format", "raw", "--rate", "200", "--duration", str(int(seconds))]
    spy = subprocess.Popen(
        [*command, "--output", str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        spy.wait(timeout=seconds + 30)
        console.print(f"profile: {target}")


def measure(
    server: Server,
    dbname: str,
    cache_mb: int,
    picks: dict[str, list[Any]],
    args: argparse.Namespace,
    progress: Progress,
    rows: list[Row],
) -> None:
    """Appends each row as it is measured: a failure later keeps what was measured."""

    def load(call: Call, asked: str, warmup: float, seed: int, label: str) -> Window:
        database, pid = DatabaseCpu(dbname), server.proc.pid
        return asyncio.run(
            closed_loop(
                *(call, server.base_url, picks[asked], args.clients, warmup, args.duration),
                *(seed, pid, database, progress, label),
            )
        )

    for round_ in range(1, args.rounds + 1):
        # Which way goes first flips every round, so drift hits both alike.
        ways = WAYS if round_ % 2 else (WAYS[1], WAYS[0], WAYS[3], WAYS[2])
        for workload, api, calls, call, asked in ways:
            label = f"{workload}, {api.split(':')[0]}, cache {cache_mb} MB, r{round_}"
            window = load(call, asked, args.warmup, args.seed + round_, label)
            for error, count in window.errors.most_common(3):
                console.print(f"[red]{label}: {count} x {error}[/red]")
            figures = summary(window, args.duration)
            rows.append(Row(workload, api, calls, cache_mb, round_, figures))
    if args.profile is not None and cache_mb == args.cache_mb[0]:
        for workload, api, _, call, asked in WAYS:
            name = f"{workload}-{api.split(':')[0]}-cache{cache_mb}".replace(" ", "-").lower()
            with profiled(server, args.profile, name, args.duration):
                load(call, asked, 1.0, args.seed, f"profiling {name}")


def run(args: argparse.Namespace, rows: list[Row], facts: dict[str, Any]) -> None:
    dbname = f"bench_graphql_{secrets.token_hex(4)}"
    with (
        progress_bar() as progress,
        fresh_database(args.database_url, dbname) as db_url,
        tempfile.TemporaryDirectory(prefix="modelledger-bench-graphql-") as tmp,
    ):
        console.print(f"database: {db_url}")
        ids, facts["models"] = fill(db_url, args, progress)
        picks: dict[str, list[Any]] = {"ids": ids, "searches": searches(args.seed)}
        for cache_mb in args.cache_mb:
            workdir = Path(tmp) / f"cache-{cache_mb}"
            # The provider worker and the webhook deliverer would spend the measurements
            # taking in the whole log (the database is new to them): off, as on an API
            # replica beside `modelledger worker` and `deliver`.
            env = {"MODELLEDGER_ANSWER_CACHE_MB": str(cache_mb), **QUIET}
            with running_server(db_url, args.workers, workdir, args.startup_timeout, env) as server:
                wait_caught_up(server.base_url, args.startup_timeout, progress)
                if cache_mb:
                    wait_warmed(server, args.workers, args.startup_timeout)
                rng = random.Random(args.seed)
                compared = asyncio.run(
                    same_data(
                        server.base_url,
                        rng.sample(ids, min(args.verify, len(ids))),
                        rng.sample(picks["searches"], args.verify),
                    )
                )
                console.print(
                    f"same data both ways: {compared[0]} pages, {args.verify} searches "
                    f"({compared[1]} with hits)"
                )
                facts["verified"] = compared
                facts[f"idle server CPU % (cache {cache_mb} MB)"] = idle_cpu(server)
                measure(server, dbname, cache_mb, picks, args, progress, rows)


# The report's columns: latencies, bytes and CPU ms are per item (a page or a search).
COLUMNS = (
    ("items/s", "per_s", "{:,.1f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p95 ms", "p95_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("bytes in", "received", "{:,.0f}"),
    ("bytes out", "sent", "{:,.0f}"),
    ("server CPU ms", "server_cpu_ms", "{:.2f}"),
    ("PG CPU ms", "database_cpu_ms", "{:.2f}"),
    ("bench CPU ms", "bench_cpu_ms", "{:.2f}"),
    ("busiest server process", "busiest_share", "{:.0%}"),
    ("other CPU %", "others_cpu_pct", "{:.0f}"),
    ("errors", "errors", "{:.0f}"),
)


def _cells(row: Row) -> list[str]:
    figures = [fmt.format(row.figures[key]) for _, key, fmt in COLUMNS]
    return [row.workload, row.api, f"{row.cache_mb} MB", str(row.round), *figures]


def table(rows: list[Row]) -> Table:
    shown = Table(title="GraphQL against REST (per item: a page or a search)")
    for name in ("workload", "API", "answer cache", "round", *(c[0] for c in COLUMNS)):
        shown.add_column(name, justify="left" if name in {"workload", "API"} else "right")
    for row in rows:
        shown.add_row(*_cells(row))
    return shown


def markdown(rows: list[Row]) -> str:
    head = ["workload", "API", "answer cache", "round", *(c[0] for c in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    lines.append("")
    for row in rows:  # GraphQL beside the REST row it replaces
        if not row.api.startswith("GraphQL"):
            continue
        rest = next(
            r
            for r in rows
            if r.workload == row.workload
            and r.cache_mb == row.cache_mb
            and r.round == row.round
            and r.api.startswith("REST")
        )
        a, b = row.figures, rest.figures
        lines.append(
            f"- {row.workload}, cache {row.cache_mb} MB, round {row.round}: GraphQL/REST "
            f"throughput {a['per_s'] / max(b['per_s'], 1e-9):.2f}x, p50 "
            f"{a['p50_ms'] / max(b['p50_ms'], 1e-9):.2f}x, server CPU per item "
            f"{a['server_cpu_ms'] / max(b['server_cpu_ms'], 1e-9):.2f}x, bytes in "
            f"{a['received'] / max(b['received'], 1e-9):.2f}x"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.graphql", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=100_000, help="models to generate (about)")
    p.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of a loopback PostgreSQL server (a database is made and dropped on it)",
    )
    p.add_argument("--clients", type=int, default=8, help="concurrent closed-loop clients")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per row")
    p.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before each")
    p.add_argument("--workers", type=int, default=2, help="MODELLEDGER_WORKERS for serve")
    p.add_argument(
        "--cache-mb",
        default="14,0",
        help="answer cache sizes to run with, comma-separated (14: the default; 0: off)",
    )
    p.add_argument("--rounds", type=int, default=1, help="rounds; the order flips each round")
    p.add_argument("--verify", type=int, default=5, help="pages and searches compared first")
    p.add_argument("--batch", type=int, default=5_000, help="events per insert_events call")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument(
        "--profile", type=Path, default=None, help="also py-spy the server under each load, here"
    )
    p.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    try:
        args.cache_mb = [int(v) for v in args.cache_mb.split(",") if v.strip()]
        check_loopback_pg(args.database_url)
    except (ValueError, BenchError) as exc:
        p.error(str(exc))
    for name in ("models", "clients", "duration", "workers", "rounds", "verify", "batch"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be > 0")
    if not args.cache_mb or min(args.cache_mb) < 0:
        p.error("--cache-mb: sizes >= 0")
    if args.profile is not None and not Path(py_spy()).exists():
        p.error("--profile needs py-spy (pip install py-spy)")
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # finally blocks stop the server and drop the database


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    rows: list[Row] = []
    facts: dict[str, Any] = {"models": 0}
    try:
        run(args, rows, facts)
    except (BenchError, OSError, subprocess.SubprocessError) as error:
        console.print(f"[red]failed: {type(error).__name__}: {error}[/red]")
        facts["failure"] = str(error)
    Console(width=220).print(table(rows))
    print(f"\n{facts['models']:,} models; {args.clients} clients; {args.workers} workers\n")
    print(markdown(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"config": {**vars(args), "profile": str(args.profile)}, **facts}
        payload["rows"] = [asdict(r) for r in rows]
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    return 1 if "failure" in facts else 0


if __name__ == "__main__":
    sys.exit(main())
