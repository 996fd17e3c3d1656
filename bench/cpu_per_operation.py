"""Where a write's time goes: CPU per operation of each of ModelLedger's processes.

    .venv/bin/python -m bench.cpu_per_operation --workloads create,version,promote,promote

ModelLedger runs as bench.vs_mlflow runs it (docs/how-to/production.md: two API
processes beside the projection worker, on PostgreSQL), seeded with the same models,
driven by the same workloads. For each workload it prints the operations per second
and the CPU milliseconds each operation cost: the API processes, the projection
worker, the PostgreSQL backends serving each of them, and the load generator. On a
machine whose cores are all busy, the total is what bounds the throughput, so this is
the number a change should lower. A workload named twice runs twice: the second time
it meets models the first has changed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.registry_load import drive
from bench.registry_workloads import WORKLOADS, Context, ledger_operations, seed_models
from bench.service import auth_headers, check_loopback_pg, fresh_database
from bench.vs_mlflow import caught_up, running_ledger, seed_ledger

console = Console(stderr=True)
DATABASE = "modelledger_cpu_per_op"
ROLES = ("api", "postgres for api", "projector", "postgres for projector", "load generator")
_CLIENT_PORT = re.compile(r"\((\d+)\)")


@dataclass
class Sample:
    workload: str
    per_second: float
    ms_per_op: dict[str, float]


def _cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def processes_by_role(api_pid: int, projector_pid: int) -> dict[str, list[psutil.Process]]:
    """Our processes, and each PostgreSQL backend of the database by whom it serves
    (its client's port, which PostgreSQL shows in the backend's title)."""
    roles: dict[str, list[psutil.Process]] = defaultdict(list)
    owner_of_port: dict[int, str] = {}
    for role, pid in (("api", api_pid), ("projector", projector_pid)):
        for proc in _tree(pid):
            roles[role].append(proc)
            try:
                for conn in proc.net_connections(kind="tcp"):
                    owner_of_port[conn.laddr.port] = role
            except psutil.Error:
                continue
    for proc in psutil.process_iter(["cmdline"]):
        title = " ".join(proc.info["cmdline"] or ())
        found = _CLIENT_PORT.search(title) if DATABASE in title else None
        if found and int(found.group(1)) in owner_of_port:
            roles[f"postgres for {owner_of_port[int(found.group(1))]}"].append(proc)
    roles["load generator"].append(psutil.Process())
    return roles


def measure(key: str, ctx: Context, args: argparse.Namespace, pids: tuple[int, int]) -> Sample:
    workload = next(w for w in WORKLOADS if w.key == key)
    # Found before and after: pools may open connections during the run.
    before_roles = processes_by_role(*pids)
    before = {p.pid: _cpu(p) for procs in before_roles.values() for p in procs}
    began = time.monotonic()
    measured = asyncio.run(
        drive(
            ledger_operations()[key](ctx),
            auth_headers(),
            workload.clients or args.clients,
            args.warmup,
            args.duration,
            min_completed=workload.min_completed,
        )
    )
    wall = time.monotonic() - began
    seconds: dict[str, float] = defaultdict(float)
    for role, procs in processes_by_role(*pids).items():
        for proc in procs:
            seconds[role] += _cpu(proc) - before.get(proc.pid, 0.0)
    rate = max(measured.per_second, 1e-9)
    # CPU over the whole call (warm-up included) per second, over operations per second.
    ms = {role: 1000 * seconds[role] / wall / rate for role in ROLES}
    return Sample(key, measured.per_second, ms)


def report(samples: list[Sample]) -> Table:
    table = Table(title="CPU milliseconds per operation")
    table.add_column("workload")
    table.add_column("ops/s", justify="right")
    for role in (*ROLES, "total"):
        table.add_column(role, justify="right")
    for s in samples:
        cells = [f"{s.ms_per_op[r]:.3f}" for r in ROLES]
        table.add_row(
            s.workload, f"{s.per_second:,.1f}", *cells, f"{sum(s.ms_per_op.values()):.3f}"
        )
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=10_000, help="models seeded")
    p.add_argument("--workloads", default="create,version,promote,promote")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--ledger-workers", type=int, default=2)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    keys = {w.key for w in WORKLOADS}
    args.workloads = [k for k in args.workloads.split(",") if k]
    if unknown := set(args.workloads) - keys:
        p.error(f"--workloads: unknown {sorted(unknown)}; known: {sorted(keys)}")
    check_loopback_pg(args.pg_url)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = seed_models(args.size)
    samples: list[Sample] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cpu-per-op-")))
        db_url = stack.enter_context(fresh_database(args.pg_url, DATABASE))
        with Progress(console=console) as progress:
            seed_ledger(db_url, models, progress)
        servers = stack.enter_context(running_ledger(db_url, args, workdir))
        pids = (servers.api_pid, servers.projector_pid)
        for key in args.workloads:
            caught_up(servers.base_url, 900)
            ctx = Context(servers.base_url, models, f"cpu-{uuid.uuid4().hex[:8]}")
            sample = measure(key, ctx, args, pids)
            samples.append(sample)
            console.print(f"{key}: {sample.per_second:,.1f}/s")
    Console(width=160).print(report(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
