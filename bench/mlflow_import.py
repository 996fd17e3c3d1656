"""Import throughput: `modelledger migrate mlflow` on an MLflow registry of N models.

    .venv/bin/python -m bench.mlflow_import --models 10000 --versions-per-model 3
    # or: make bench-migrate

MLflow 3.17.2 (bench/.mlflow/venv) serves its own PostgreSQL database, seeded with COPY:
N registered models (team, status and task tags), each with V versions, each version
from its own finished run (accuracy and loss, two parameters), and a `champion` alias
on its newest version. Then, into each store (the embedded default: SQLite in a fresh
MODELLEDGER_DATA_DIR; PostgreSQL: a fresh database), the CLI runs as a subprocess three
times: a dry run into the empty store (reads MLflow's REST API and plans, writes
nothing), the first import, and a second one with nothing changed (it records nothing).
Its progress bars, drawn on a pseudo-terminal as in a shell, tell the phases apart.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import os
import pty
import random
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import Progress

from bench.mlflow_server import COLUMNS, SeedModel, _experiment, ensure_mlflow, running_mlflow
from bench.registry_workloads import seed_models
from bench.service import REPO_ROOT, BenchError, check_loopback_pg, fresh_database
from commands.mlflow_import.plan import KINDS
from commands.registry import ModelRegistry

console = Console(stderr=True)
STORES = ("sqlite", "postgres")
PG_EVENTS = f"{ModelRegistry.name.lower()}_events"  # eventsourcing's name there
SEED_COLUMNS = {
    **COLUMNS,
    "params": "key, value, run_uuid",
    "registered_model_aliases": "alias, version, name, workspace",
}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_RECORDING = re.compile(r"recording\s[^\n\r]*?(\d+)/(\d+)")
_COUNT = re.compile(r"^\W*(" + "|".join([*KINDS, "models unchanged", "skipped"]) + r")\W+(\d+)")


# -- the seed: N models x V versions, written into MLflow's tables ----------------------


def seed_registry(dsn: str, models: list[SeedModel], versions: int, progress: Progress) -> None:
    """The rows of _write_rows (bench/mlflow_server.py), with V versions per model, each
    from its own run with two metrics and two parameters, and a `champion` alias."""
    task = progress.add_task("seed mlflow: rows", total=len(models))
    rnd = random.Random(11)
    start = int(time.time() * 1000) - len(models) * (versions + 1)
    rows: dict[str, io.StringIO] = {table: io.StringIO() for table in SEED_COLUMNS}
    with psycopg.connect(dsn) as conn:
        experiment = _experiment(conn, start)
        for i, model in enumerate(models):
            _model_rows(rows, model, versions, experiment, start + i * (versions + 1), rnd)
            if i % 1000 == 999 or i == len(models) - 1:
                progress.update(task, completed=i + 1)
        progress.remove_task(task)
        task = progress.add_task("seed mlflow: COPY", total=len(SEED_COLUMNS))
        with conn.cursor() as cur:
            for table, columns in SEED_COLUMNS.items():  # parents before children
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(rows[table].getvalue())
                progress.advance(task)
        conn.commit()
        conn.execute("ANALYZE")
        progress.remove_task(task)


def _model_rows(
    rows: dict[str, io.StringIO],
    m: SeedModel,
    versions: int,
    experiment: str,
    ts: int,
    rnd: random.Random,
) -> None:
    last = ts + versions
    rows["registered_models"].write(f"{m.name}\t{ts}\t{last}\tseeded\tdefault\n")
    for key, value in (("team", m.team), ("status", m.status), ("task", "classification")):
        rows["registered_model_tags"].write(f"{key}\t{value}\t{m.name}\tdefault\n")
    for v in range(1, versions + 1):
        at, run = ts + v, uuid.uuid4().hex
        source = f"runs:/{run}/model"
        accuracy = m.accuracy if v == versions else round(rnd.random(), 6)
        rows["runs"].write(
            f"{run}\t{m.name}-v{v}\tUNKNOWN\t\t\tbench\tFINISHED\t{at}\t{at}\t\tactive\t"
            f"mlflow-artifacts:/{experiment}/{run}/artifacts\t{experiment}\t\\N\n"
        )
        rows["tags"].write(f"mlflow.runName\t{m.name}-v{v}\t{run}\nmodel_name\t{m.name}\t{run}\n")
        for metric, number in (("accuracy", accuracy), ("loss", round(1 - accuracy, 6))):
            rows["metrics"].write(f"{metric}\t{number}\t{at}\t{run}\t0\tf\n")
            rows["latest_metrics"].write(f"{metric}\t{number}\t{at}\t0\tf\t{run}\n")
        rows["params"].write(f"learning_rate\t{10 ** -rnd.randint(2, 5)}\t{run}\n")
        rows["params"].write(f"epochs\t{rnd.randint(1, 50)}\t{run}\n")
        rows["model_versions"].write(
            f"{m.name}\t{v}\t{at}\t{at}\t\tbench\tNone\t{source}\t{run}\tREADY\t\\N\t\t"
            f"{source}\tdefault\n"
        )
    rows["registered_model_aliases"].write(f"champion\t{versions}\t{m.name}\tdefault\n")


# -- one run of the CLI, its progress read from a pseudo-terminal ------------------------


@dataclass
class Run:
    store: str
    run: str  # "dry run", "first import", "re-run"
    wall_s: float
    startup_s: float  # until the first progress bar (imports, opening the store)
    reading_s: float  # reading MLflow and planning, until the recording bar
    recording_s: float  # until the recording bar is full
    closing_s: float  # closing the store, printing the summary, exiting
    models: int
    versions: int
    events_recorded: int
    counts: dict[str, int] = field(default_factory=dict)  # the summary's table
    store_bytes: int = 0

    @property
    def recorded(self) -> int:
        return sum(self.counts.get(kind, 0) for kind in KINDS)


def migrate(server_url: str, env: dict[str, str], label: str, dry_run: bool) -> Run:
    command = [sys.executable, "-m", "modelledger", "migrate", "mlflow"]
    command += ["--tracking-uri", server_url, *(["--dry-run"] if dry_run else [])]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    with tempfile.TemporaryFile() as out:
        began = time.monotonic()
        proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=slave
        )
        os.close(slave)
        phases, tail = _watch(master, began, label)
        code = proc.wait()
        wall = time.monotonic() - began
        out.seek(0)
        summary = out.read().decode(errors="replace")
    if code != 0:
        raise BenchError(f"{label} exited {code}:\n{summary[-2000:]}\n{tail[-2000:]}")
    first = phases.get("reading", wall)
    recording = phases.get("recording", wall)
    recorded = recording if dry_run else phases.get("recorded", wall)
    counts = {m[1]: int(m[2]) for line in summary.splitlines() if (m := _COUNT.match(line))}
    found = re.search(r"(\d+) registered models, (\d+) versions", summary)
    models, versions = (int(found[1]), int(found[2])) if found else (0, 0)
    store, run = label.split(": ", 1)
    return Run(store, run, wall, first, recording - first, recorded - recording,
               wall - recorded, models, versions, 0, counts)  # fmt: skip


def _watch(master: int, began: float, label: str) -> tuple[dict[str, float], str]:
    """Read the child's terminal until it closes: when each phase first showed, and the
    output's tail. Passed through to a terminal; otherwise summed up every 10 s."""
    phases: dict[str, float] = {}
    text, raw = "", sys.stderr.isatty()
    shown = began
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        chunk = b""
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its terminal
                break
            if not chunk:
                break
        if raw:
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
        text = (text + _ANSI.sub("", chunk.decode(errors="replace")))[-4000:]
        now = time.monotonic()
        for phase in ("reading", "recording"):
            if phase not in phases and phase in text:
                phases[phase] = now - began
                if not raw:
                    console.print(f"  {label}: {phase} from {now - began:,.1f} s")
        done = _RECORDING.findall(text)
        if done and done[-1][0] == done[-1][1] and "recorded" not in phases:
            phases["recorded"] = now - began
        if not raw and now - shown >= 10 and done:
            console.print(f"  {label}: recorded {done[-1][0]}/{done[-1][1]}")
            shown = now
    os.close(master)
    return phases, text


# -- the stores ------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    name: str
    env: dict[str, str]
    sqlite_path: Path | None = None
    dsn: str | None = None

    def events(self) -> int:
        if self.sqlite_path is not None:
            if not self.sqlite_path.exists():
                return 0
            with sqlite3.connect(self.sqlite_path) as conn:
                return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])
        assert self.dsn is not None
        with psycopg.connect(self.dsn) as conn:
            if conn.execute("SELECT to_regclass(%s)", (PG_EVENTS,)).fetchone() == (None,):
                return 0
            row = conn.execute(f"SELECT count(*) FROM {PG_EVENTS}").fetchone()
            return int(row[0]) if row else 0

    def size_bytes(self) -> int:
        """The SQLite file with its WAL; PostgreSQL's events table with its indexes."""
        if self.sqlite_path is not None:
            files = [Path(f"{self.sqlite_path}{suffix}") for suffix in ("", "-wal", "-shm")]
            return sum(f.stat().st_size for f in files if f.exists())
        assert self.dsn is not None
        with psycopg.connect(self.dsn) as conn:
            query = "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)"
            row = conn.execute(query, (PG_EVENTS,)).fetchone()
            return int(row[0]) if row else 0


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELLEDGER_", "MLFLOW_"))}
    env["MODELLEDGER_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["MODELLEDGER_DATABASE_URL"] = database_url
    if env.get("TERM", "dumb") in ("dumb", "unknown", ""):
        env["TERM"] = "xterm"  # rich draws live bars only on a terminal it can drive
    return env


@contextmanager
def opened_store(name: str, pg_url: str, workdir: Path) -> Iterator[Store]:
    data_dir = workdir / name
    data_dir.mkdir()
    if name == "sqlite":
        yield Store(name, _env(data_dir, None), sqlite_path=data_dir / "modelledger.sqlite")
        return
    with fresh_database(pg_url, "modelledger_migrate_bench") as dsn:
        yield Store(name, _env(data_dir, dsn), dsn=dsn)


def run_store(name: str, server_url: str, args: argparse.Namespace, workdir: Path) -> list[Run]:
    runs: list[Run] = []
    with opened_store(name, args.pg_url, workdir) as store:
        for label, dry_run in (("dry run", True), ("first import", False), ("re-run", False)):
            before = store.events()
            run = migrate(server_url, store.env, f"{name}: {label}", dry_run)
            run.events_recorded = store.events() - before
            run.store_bytes = store.size_bytes()
            console.print(f"{name}: {label}: {_line(run)}")
            runs.append(run)
    return runs


# -- report ----------------------------------------------------------------------------


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.1f}" if seconds > 0 and n else "-"


def _line(r: Run) -> str:
    phases = (r.startup_s, r.reading_s, r.recording_s, r.closing_s)
    return (
        f"{r.wall_s:,.1f} s ({' + '.join(f'{s:,.1f}' for s in phases)}); {r.models:,} models, "
        f"{r.versions:,} versions; {r.recorded:,} steps, {r.events_recorded:,} events recorded; "
        f"{r.counts.get('skipped', 0)} skipped; store {r.store_bytes / 2**20:,.1f} MiB"
    )


def report(runs: list[Run]) -> str:
    lines = [
        "| store | run | wall s | start-up s | reading + planning s | recording s | exit s | "
        "models/s | versions/s | steps | events recorded | events/s (recording) | "
        "store MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        phases = (r.startup_s, r.reading_s, r.recording_s, r.closing_s)
        lines.append(
            f"| {'SQLite' if r.store == 'sqlite' else 'PostgreSQL'} | {r.run} | {r.wall_s:,.1f} "
            f"| {' | '.join(f'{s:,.1f}' for s in phases)} "
            f"| {_rate(r.models, r.wall_s)} | {_rate(r.versions, r.wall_s)} | {r.recorded:,} "
            f"| {r.events_recorded:,} | {_rate(r.events_recorded, r.recording_s)} "
            f"| {r.store_bytes / 2**20:,.1f} |"
        )
    return "\n".join(lines)


def check(runs: list[Run], models: int, versions: int) -> list[str]:
    """What a correct import shows: every model and version read, the first import
    recording them, the second recording nothing."""
    problems = []
    for r in runs:
        where = f"{r.store} {r.run}"
        if (r.models, r.versions) != (models, versions):
            problems.append(f"{where}: read {r.models} models, {r.versions} versions")
        if (r.run == "first import") != (r.events_recorded > 0):
            problems.append(f"{where}: {r.events_recorded} events recorded")
        if r.run == "re-run" and r.recorded:
            problems.append(f"{where}: {r.recorded} steps recorded")
        if r.run == "first import" and r.counts.get("versions imported") != versions:
            problems.append(f"{where}: imported {r.counts.get('versions imported')} versions")
        if r.run == "re-run" and r.counts.get("models unchanged") != models:
            problems.append(f"{where}: {r.counts.get('models unchanged')} models unchanged")
    return problems


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", type=int, default=10_000, help="registered models in MLflow")
    p.add_argument("--versions-per-model", type=int, default=3, help="versions of each model")
    p.add_argument("--stores", default=",".join(STORES), help="sqlite, postgres or both")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--mlflow-workers", type=int, default=4, help="gunicorn workers")
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.add_argument("--json", type=Path, default=Path("var/bench-migrate.json"))
    args = p.parse_args(argv)
    args.stores = tuple(s for s in STORES if s in args.stores.split(","))
    if not args.stores:
        p.error(f"--stores: one or both of {', '.join(STORES)}")
    if args.models < 1 or args.versions_per_model < 1:
        p.error("--models and --versions-per-model must be at least 1")
    try:
        check_loopback_pg(args.pg_url)
    except BenchError as error:
        p.error(str(error))
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # through the finally blocks: servers stopped, DBs dropped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    ensure_mlflow(console.print)
    models, per_model = seed_models(args.models), args.versions_per_model
    runs: list[Run] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-migrate-")))
        mlflow = stack.enter_context(
            running_mlflow(args.pg_url, args.mlflow_workers, workdir, args.startup_timeout)
        )
        began = time.monotonic()
        with Progress(console=console) as progress:
            seed_registry(mlflow.dsn, models, per_model, progress)
        console.print(
            f"seeded MLflow with {len(models):,} models x {per_model} versions "
            f"in {time.monotonic() - began:,.1f} s"
        )
        for name in args.stores:
            runs += run_store(name, mlflow.base_url, args, workdir)
    print(report(runs))
    problems = check(runs, len(models), len(models) * per_model)
    for problem in problems:
        console.print(f"[red]unexpected:[/red] {problem}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"models": len(models), "versions_per_model": per_model, "problems": problems}
    result["runs"] = [asdict(r) | {"recorded": r.recorded} for r in runs]
    args.json.write_text(json.dumps(result, indent=2))
    console.print(f"JSON written to {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
