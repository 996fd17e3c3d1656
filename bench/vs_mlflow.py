"""ModelLedger and MLflow's model registry side by side, in one run, on one PostgreSQL.

    .venv/bin/python -m bench.vs_mlflow --sizes 10000,100000 --repeat 3    # or: make bench-mlflow

For each size, both registries get the same models (MLflow's written into its tables,
ModelLedger's appended to its log as events, then projected), then every workload runs
against each with the same clients and the same load generator, the two systems taking
turns (their order flips every round, so drift hits both alike). MLflow is installed
into bench/.mlflow/venv on first use; it is no dependency of the project.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from eventsourcing.persistence import StoredEvent
from rich.console import Console
from rich.progress import Progress

from bench.mlflow_server import SeedModel, ensure_mlflow, running_mlflow, seed_mlflow
from bench.registry_load import drive
from bench.registry_workloads import (
    PROJECT,
    WORKLOADS,
    Context,
    Workload,
    ledger_operations,
    mlflow_operations,
    seed_models,
)
from bench.service import (
    BenchError,
    auth_headers,
    check_loopback_pg,
    fresh_database,
    maintenance_connection,
    running_server,
    vacuum_analyze,
)
from modelledger.bootstrap import bootstrap
from modelledger.settings import Settings
from write_model.model import AIModel
from write_model.values import EventMetadata

console = Console(stderr=True)
SYSTEMS = ("modelledger", "mlflow")


@dataclass
class Row:
    size: int
    workload: str
    system: str
    round: int
    clients: int
    per_second: float
    p50_ms: float
    p99_ms: float
    completed: int
    errors: int
    first_error: str


# -- ModelLedger: seeded as events, served as docs/how-to/production.md says ----------


def seed_ledger(db_url: str, models: list[SeedModel], progress: Progress) -> int:
    """Each model registered, trained once with its accuracy: appended in large batches."""
    ledger = bootstrap(Settings(_env_file=None, database_url=db_url, projections=False))
    task = progress.add_task("seed modelledger", total=len(models))
    meta = EventMetadata("seed", str(uuid.uuid4()), "seed")
    try:
        to_stored = ledger.registry.mapper.to_stored_event
        batch: list[StoredEvent] = []
        for i, seeded in enumerate(models, 1):
            model = AIModel.register(
                name=seeded.name,
                project=PROJECT,
                task="classification",
                framework="pytorch",
                tags=[seeded.team, seeded.status],
                meta=meta,
            )
            run_id = str(uuid.uuid4())
            model.start_training(
                run_id=run_id, dataset="s3://data/train", hyperparameters={}, backend="external",
                meta=meta,
            )  # fmt: skip
            model.complete_training(
                run_id=run_id, metrics={"accuracy": seeded.accuracy}, artifact_uri=None, meta=meta
            )
            batch.extend(to_stored(event) for event in model.collect_events())
            if len(batch) >= 6000 or i == len(models):
                ledger.registry.recorder.insert_events(batch)
                batch = []
                progress.update(task, completed=i)
        return ledger.log_head()
    finally:
        ledger.close()
        progress.remove_task(task)


@dataclass(frozen=True)
class LedgerServers:
    base_url: str
    api_pid: int  # uvicorn's parent: its workers are its children
    projector_pid: int


@contextmanager
def running_ledger(db_url: str, args: argparse.Namespace, workdir: Path) -> Iterator[LedgerServers]:
    """An API process and the projection worker beside it (docs/how-to/production.md)."""
    env = {
        "MODELLEDGER_PROJECTIONS": "false",
        "MODELLEDGER_PROVIDER_WORKER": "false",
        # A pool as large as the clients: overflow connections are opened and closed per
        # request, which cost more than the reads themselves (py-spy).
        # Two pools (events, read tables) per worker, within PostgreSQL's 100 connections.
        "MODELLEDGER_DB_POOL_SIZE": str(max(4, min(args.clients, 64) // (2 * args.ledger_workers))),
        "MODELLEDGER_DB_MAX_OVERFLOW": "0",
    }
    with ExitStack() as stack:
        api = stack.enter_context(
            running_server(
                db_url, args.ledger_workers, workdir / "api", args.startup_timeout, env,
                ("serve", "--no-projections"),
            )
        )  # fmt: skip
        # Its five projections need a few connections each way, not the API's pools:
        # the rest is headroom under PostgreSQL's 100 for MLflow and maintenance.
        worker_env = {**env, "MODELLEDGER_DB_POOL_SIZE": "8"}
        projector = stack.enter_context(
            running_server(
                db_url, 1, workdir / "project", args.startup_timeout, worker_env, ("project",)
            )
        )
        yield LedgerServers(api.base_url, api.proc.pid, projector.proc.pid)


def caught_up(base_url: str, timeout_s: float) -> None:
    """Wait until every projection holds every event: no catch-up runs during a measurement."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = httpx.get(f"{base_url}/health/detailed", headers=auth_headers(), timeout=30)
        projections = health.json().get("projections", {})
        if projections and all(p.get("lag") == 0 for p in projections.values()):
            return
        time.sleep(0.5)
    raise BenchError(f"ModelLedger's projections did not catch up in {timeout_s:.0f} s")


# -- one measurement ------------------------------------------------------------------------


def measure(
    system: str, workload: Workload, ctx: Context, args: argparse.Namespace, size: int, rnd: int
) -> Row:
    factories = ledger_operations() if system == "modelledger" else mlflow_operations()
    headers = auth_headers() if system == "modelledger" else {"Content-Type": "application/json"}
    clients = workload.clients or args.clients
    measured = asyncio.run(
        drive(
            factories[workload.key](ctx),
            headers,
            clients,
            args.warmup if workload.warmup else 0.0,
            args.duration,
            min_completed=workload.min_completed,
        )
    )
    return Row(
        size,
        workload.key,
        system,
        rnd,
        clients,
        round(measured.per_second, 1),
        round(measured.percentile(0.50) * 1000, 1),
        round(measured.percentile(0.99) * 1000, 1),
        measured.completed,
        measured.errors,
        measured.first_error,
    )


def run_size(size: int, args: argparse.Namespace, progress: Progress) -> list[Row]:
    models = seed_models(size)
    rows: list[Row] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vs-mlflow-")))
        urls: dict[str, str] = {}
        experiment, maintenance = "", []
        if "modelledger" in args.systems:
            db_url = stack.enter_context(fresh_database(args.pg_url, "modelledger_vs_mlflow"))
            maintenance.append(stack.enter_context(maintenance_connection(db_url)))
            seed_ledger(db_url, models, progress)
            servers = stack.enter_context(running_ledger(db_url, args, workdir))
            urls["modelledger"] = servers.base_url
        if "mlflow" in args.systems:
            mlflow = stack.enter_context(
                running_mlflow(args.pg_url, args.mlflow_workers, workdir, args.startup_timeout)
            )
            maintenance.append(stack.enter_context(maintenance_connection(mlflow.dsn)))
            console.print(f"seeding mlflow with {size:,} models")
            experiment = seed_mlflow(mlflow.dsn, models)
            urls["mlflow"] = mlflow.base_url
        ledger_url = urls.get("modelledger")
        for rnd in range(1, args.repeat + 1):
            order = args.systems if rnd % 2 else tuple(reversed(args.systems))
            for conn in maintenance:  # both alike, before each round (not measured)
                vacuum_analyze(conn)
            for workload in selected(args):
                for system in order:
                    if ledger_url is not None:
                        caught_up(ledger_url, args.catch_up_timeout)
                    ctx = Context(urls[system], models, f"r{size}-{rnd}", experiment)
                    row = measure(system, workload, ctx, args, size, rnd)
                    rows.append(row)
                    console.print(_line(row))
    return rows


def selected(args: argparse.Namespace) -> list[Workload]:
    keys = set(args.workloads.split(",")) if args.workloads else None
    return [w for w in WORKLOADS if keys is None or w.key in keys]


def _line(row: Row) -> str:
    errors = f"  errors={row.errors} ({row.first_error})" if row.errors else ""
    return (
        f"[{row.size:,} #{row.round}] {row.workload:<11} {row.system:<11} "
        f"{row.per_second:>8,.1f}/s  p50={row.p50_ms:,.1f}ms  p99={row.p99_ms:,.1f}ms{errors}"
    )


# -- report ---------------------------------------------------------------------------------


def report(rows: list[Row]) -> str:
    lines = [
        "| size | workload | ModelLedger ops/s (rounds) | MLflow ops/s (rounds) | ratio | "
        "ModelLedger p50 / p99 ms | MLflow p50 / p99 ms |",
        "|---:|---|---|---|---:|---|---|",
    ]
    keys = sorted({(r.size, r.workload) for r in rows}, key=lambda k: (k[0], _order(k[1])))
    for size, workload in keys:
        ours = [
            r for r in rows if (r.size, r.workload, r.system) == (size, workload, "modelledger")
        ]
        theirs = [r for r in rows if (r.size, r.workload, r.system) == (size, workload, "mlflow")]
        lines.append(
            f"| {size:,} | {_title(workload)} | {_rounds(ours)} | {_rounds(theirs)} | "
            f"{_ratio(ours, theirs)} | {_latency(ours)} | {_latency(theirs)} |"
        )
    return "\n".join(lines)


def _order(key: str) -> int:
    return [w.key for w in WORKLOADS].index(key)


def _title(key: str) -> str:
    return next(w.title for w in WORKLOADS if w.key == key)


def _median(rows: list[Row]) -> float:
    return statistics.median(r.per_second for r in rows) if rows else 0.0


def _rounds(rows: list[Row]) -> str:
    if not rows:
        return "-"
    return f"{_median(rows):,.1f} ({' / '.join(f'{r.per_second:,.1f}' for r in rows)})"


def _ratio(ours: list[Row], theirs: list[Row]) -> str:
    if not ours or not theirs:
        return "-"  # one system alone (--systems)
    return f"{_median(ours) / _median(theirs):,.1f}x" if _median(theirs) else "inf"


def _latency(rows: list[Row]) -> str:
    if not rows:
        return "-"
    p50 = statistics.median(r.p50_ms for r in rows)
    p99 = statistics.median(r.p99_ms for r in rows)
    return f"{p50:,.1f} / {p99:,.1f}"


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="registry sizes (models), comma list")
    p.add_argument("--repeat", type=int, default=3, help="rounds per size; order alternates")
    p.add_argument("--clients", type=int, default=64, help="concurrent clients (both systems)")
    # 8 + 1.5 s: the whole run (2 sizes x 3 rounds x 8 workloads x 2 systems) in under
    # the 30 minutes; at 10 + 2 s it took 40 on this machine.
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per workload")
    p.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds before each")
    p.add_argument("--workloads", default="", help="comma list of keys (default: all)")
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="one alone: to profile it, or without the other",
    )
    p.add_argument("--mlflow-workers", type=int, default=4, help="gunicorn workers (4: its best)")
    p.add_argument(
        "--ledger-workers", type=int, default=2, help="MODELLEDGER_WORKERS (2: as docker-compose)"
    )
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.add_argument("--catch-up-timeout", type=float, default=900.0)
    p.add_argument("--json", type=Path, default=Path("var/bench-vs-mlflow.json"))
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.systems = tuple(s for s in SYSTEMS if s in args.systems.split(","))
    if not args.systems:
        p.error(f"--systems: one or both of {', '.join(SYSTEMS)}")
    try:
        check_loopback_pg(args.pg_url)
    except BenchError as error:
        p.error(str(error))
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Through the finally blocks: both registries stopped, their databases dropped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    if "mlflow" in args.systems:
        ensure_mlflow(console.print)
    rows: list[Row] = []
    with Progress(console=console) as progress:
        for size in args.sizes:
            rows += run_size(size, args, progress)
    table = report(rows)
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    console.print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
