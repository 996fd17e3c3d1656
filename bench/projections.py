"""Read-side benchmark: replay and rebuild rates, query latency, live projection lag.

Usage (from the repository root)::

    .venv/bin/python -m bench.projections --events 1000000 --json var/bench-read.json

One run, on a fresh database of a loopback PostgreSQL server (dropped afterwards):

1. **history** (``bench.history``) - N events of realistic model histories
   (create, update, train, complete with metrics or fail, deploy, roll back,
   undeploy, archive; about ten events a model) made by the ``AIModel``
   aggregate itself and appended with ``registry.recorder.insert_events`` in
   large batches (not over HTTP).
2. **replay** (``bench.replay``) - (a) the *ceiling*: this process reads the
   notification log in pages of 5,000 and decodes every notification into a
   domain event; (b) the projections' *catch-up* (the live path, all of them at
   once, from position 0); (c) a *rebuild* of each projection alone and of all
   together, driven through ``ProjectionRunner`` exactly as ``modelledger
   rebuild`` does (blue/green into a fresh generation, then the swap). Rates are
   positions covered per second; each is also given as a ratio to (a).
3. **counters vs GROUP BY** (``bench.read_queries``) - statistics and
   leaderboards from the projection's counter/leaderboard tables against
   GROUP BY queries over the catalogue, as direct SQL.
4. **queries over HTTP** - ``modelledger serve`` on that database; 32 clients
   per query kind: search, statistics, top-performing, one model.
5. **live lag** - commands sent to the running service; for each, the time
   from its response until a query's ``X-Position`` reaches its position.

Progress goes to stderr; the Markdown report (``bench.read_report``) goes to
stdout. This module makes the database, runs the steps in order and holds the
command line.
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from bench.history import WORDS, HistoryResult, Sample, generate_history
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
from bench.read_report import report, write_json
from bench.replay import ReplayResult, read_ceiling, run_projections
from bench.rss import RssSampler, max_rss_mib
from bench.service import BenchError, check_loopback_pg, running_server, with_database
from bench.ui_pages import signed_in, ui_kinds
from commands.errors import CommandError
from commands.registry import ModelRegistry
from modelledger.bootstrap import bootstrap
from modelledger.seed import TAGS, TASKS
from modelledger.settings import Settings
from projections.base import Projection
from projections.timeline import TimelineProjection
from projections.worker import PROJECTIONS, ensure_projections
from write_model.errors import DomainError
from write_model.model import AIModel
from write_model.values import instant

console = Console(stderr=True)

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
    ui_pages: list[QueryResult] = field(default_factory=list)
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
    except (BenchError, psycopg.Error, OSError, DomainError, CommandError) as exc:
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
        if args.skip_sql and args.skip_http and args.skip_lag and not args.as_of and not args.ui:
            return
        result.vacuum_seconds = vacuum_analyze(db_url)
        if not args.skip_sql:
            result.sql = compare_counters(
                ledger.read_engine, db_url, args.sql_repeat, args.sql_max_seconds, progress
            )
    finally:
        ledger.close()
    if args.skip_http and args.skip_lag and not args.as_of and not args.ui:
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
        if args.ui:
            cookie = signed_in(server.base_url)
            result.ui_pages = load(kinds=ui_kinds(vocabulary, args.seed), cookie=cookie)
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
    p.add_argument("--ui", action="store_true", help="also time the web UI's pages")
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
