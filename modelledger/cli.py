"""The `modelledger` command line: serve, project, rebuild, verify, events, export, import,
audit, seed."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, NoReturn
from uuid import UUID

import typer
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.exc import InterfaceError, OperationalError

from adapters.audit_seals import read_seals, record_seal
from adapters.event_archive import ArchiveError, StoreNotEmpty, export_events, import_events
from adapters.event_store import UnsupportedDatabaseUrl, describe
from modelledger.bootstrap import Ledger, bootstrap
from modelledger.settings import Settings
from projections.base import Projection
from projections.verify import verify_projection
from projections.worker import PROJECTIONS, ProjectionWorker, ensure_projections, projection_named
from queries.events import feed_item
from queries.integrity import LogReport, check_log
from queries.projections import request_rebuild
from read_model.state import read_states

app = typer.Typer(
    help="ModelLedger: an event-sourced registry for AI models.",
    no_args_is_help=True,
    add_completion=False,
)


def open_ledger(settings: Settings | None = None, *, must_exist: bool = False) -> Ledger:
    """The ledger, or a one-line error and exit 1 (no traceback for a bad setting)."""
    settings = settings or Settings()
    url = settings.store_url()
    if must_exist and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        fail(f"no event store at {url} (check MODELLEDGER_DATABASE_URL / MODELLEDGER_DATA_DIR)")
    try:
        return bootstrap(settings)
    except (UnsupportedDatabaseUrl, PersistenceError, OSError) as error:
        fail(f"cannot open the event store ({describe(url)}): {error}")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: MODELLEDGER_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: MODELLEDGER_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="default: MODELLEDGER_WORKERS")] = None,
    projections: Annotated[
        bool | None,
        typer.Option(
            "--projections/--no-projections",
            help="run the projections in this process (default: MODELLEDGER_PROJECTIONS, on)",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (embedded default: a SQLite file under ./var, projections inside)."""
    import uvicorn

    # Worker processes read their settings from the environment, so pass overrides there.
    overrides = (("HOST", host), ("PORT", port), ("WORKERS", workers))
    for name, value in (*overrides, ("PROJECTIONS", projections)):
        if value is not None:
            os.environ[f"MODELLEDGER_{name}"] = str(value).lower()
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Create the store's and the read model's tables once here, so worker
    # processes never race to.
    ledger = open_ledger(settings)
    try:
        ensure_projections(ledger.write_engine)
    except (OperationalError, InterfaceError) as error:
        fail(f"cannot open the read database: {str(error).splitlines()[0]}")
    finally:
        ledger.close()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
    )


@app.command()
def events(
    model: Annotated[UUID | None, typer.Option(help="only this model's events")] = None,
    after: Annotated[int, typer.Option(min=0, help="positions after this one")] = 0,
    until: Annotated[int | None, typer.Option(min=1, help="up to this position")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
) -> None:
    """Print the event log as JSON lines, in global order."""
    ledger = open_ledger(must_exist=True)
    try:
        printed = 0
        start = after + 1
        while limit is None or printed < limit:
            page = ledger.registry.recorder.select_notifications(start, 500, stop=until)
            if not page:
                break
            for notification in page:
                start = notification.id + 1
                if model is not None and notification.originator_id != model:
                    continue
                event = ledger.registry.mapper.to_domain_event(notification)
                item = feed_item(notification.id, event)
                sys.stdout.write(json.dumps(item, default=str) + "\n")
                printed += 1
                if limit is not None and printed >= limit:
                    break
    finally:
        ledger.close()


@app.command("export")
def export_log(
    after: Annotated[int, typer.Option(min=0, help="only events after this position")] = 0,
) -> None:
    """Write the event log to stdout as JSON lines (a backup, or a move to another store)."""
    ledger = open_ledger(must_exist=True)
    try:
        recorder = ledger.registry.recorder
        total = max(0, (recorder.max_notification_id() or 0) - after)
        with _progress_on_stderr() as progress:
            task = progress.add_task("export", total=total)
            count = export_events(
                recorder, sys.stdout, after=after, progress=lambda n: progress.advance(task, n)
            )
    finally:
        ledger.close()
    typer.echo(f"exported {count} events", err=True)


@app.command("import")
def import_log(
    path: Annotated[Path, typer.Argument(help="a file written by `modelledger export`")],
) -> None:
    """Load an exported event log into an empty store, all or nothing."""
    if not path.is_file():
        fail(f"no such file: {path}")
    with path.open("rb") as counted:
        total = max(0, sum(1 for _ in counted) - 2)  # less the header and footer lines
    ledger = open_ledger()
    try:
        with path.open(encoding="utf-8") as lines, _progress_on_stderr() as progress:
            task = progress.add_task("import", total=total)
            summary = import_events(
                ledger.registry.recorder,
                ledger.registry.mapper,
                lines,
                progress=lambda n: progress.advance(task, n),
            )
    except (ArchiveError, StoreNotEmpty, UnicodeDecodeError) as error:
        fail(f"{path}: {error}; nothing was imported")
    finally:
        ledger.close()
    typer.echo(
        f"imported {summary.events} events of {summary.models} models "
        f"(positions {summary.first_position}..{summary.last_position})",
        err=True,
    )


def _progress_on_stderr() -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=Console(stderr=True))


@app.command()
def seed(
    models: Annotated[int, typer.Option(min=1, help="how many models to create")] = 100,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    random_seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Fill the store with realistic demo models through the command handlers."""
    from modelledger.seed import seed as run_seed

    ledger = open_ledger()
    columns = (
        TextColumn("seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[commands]} commands"),
    )
    try:
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("seed", total=models, commands=0)
            totals = {"commands": 0}

            def advance(commands: int) -> None:
                totals["commands"] += commands
                progress.update(task, advance=1, commands=totals["commands"])

            run_seed(
                ledger.registry,
                models,
                concurrency=concurrency,
                random_seed=random_seed,
                on_model=advance,
            )
    finally:
        ledger.close()
    typer.echo(f"seeded {models} models with {totals['commands']} commands")


def _selected(name: str | None) -> tuple[type[Projection], ...]:
    if name is None:
        return PROJECTIONS
    try:
        return (projection_named(name),)
    except KeyError:
        fail(f"no projection named {name!r}; known: {', '.join(p.name for p in PROJECTIONS)}")


@app.command()
def project() -> None:
    """Run the projections as a standalone worker (production); stop with SIGTERM/Ctrl-C.

    Two workers may run: each projection is written by one (a lease); the other waits."""
    ledger = open_ledger()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        worker = ledger.start_projections()
        typer.echo(f"projection worker {worker.owner} running; SIGTERM stops it", err=True)
        while not stop.wait(5):
            for name, error in worker.errors().items():
                typer.echo(f"{name}: {error}", err=True)
    finally:
        ledger.close()  # each runner finishes its batch and commits, then releases its lease
    typer.echo("projection worker stopped", err=True)


@app.command()
def rebuild(
    name: Annotated[str | None, typer.Argument(help="one projection (default: all)")] = None,
) -> None:
    """Rebuild projections from position 0 into fresh tables, then swap them in.

    Queries keep being answered from the old tables meanwhile. If a worker is
    running it does the work and this shows its progress; otherwise this does it."""
    selected = _selected(name)
    ledger = open_ledger()
    try:
        ensure_projections(ledger.write_engine)
        before = _generations(ledger)
        for projection in selected:
            request_rebuild(ledger.write_engine, projection.name, {p.name for p in PROJECTIONS})
        worker = ProjectionWorker(ledger.write_engine, ledger.registry, projections=selected)
        worker.start()
        try:
            _show_rebuild(ledger, selected, before)
        finally:
            worker.stop()
    finally:
        ledger.close()


def _generations(ledger: Ledger) -> dict[str, int]:
    with ledger.read_engine.connect() as conn:
        return {name: state.generation for name, state in read_states(conn).items()}


def _show_rebuild(
    ledger: Ledger, selected: tuple[type[Projection], ...], before: dict[str, int]
) -> None:
    columns = (
        TextColumn("{task.description:12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    started = time.monotonic()
    with Progress(*columns) as progress:
        tasks = {p.name: progress.add_task(p.name, total=None, rate="") for p in selected}
        while tasks:
            head = ledger.registry.recorder.max_notification_id() or 0
            with ledger.read_engine.connect() as conn:
                states = read_states(conn)
            for name, task in list(tasks.items()):
                state = states[name]
                if state.generation != before[name] and state.rebuild_generation is None:
                    rate = state.position / max(time.monotonic() - started, 1e-6)
                    progress.update(
                        task,
                        total=state.position,
                        completed=state.position,
                        rate=f"{rate:,.0f} events/s",
                    )
                    tasks.pop(name)
                    continue
                if state.status == "failed" or (
                    state.error and state.error.startswith("rebuild failed")
                ):
                    fail(f"{name}: {state.error}")
                done = state.rebuild_position or 0
                rate = done / max(time.monotonic() - started, 1e-6)
                progress.update(task, total=head, completed=done, rate=f"{rate:,.0f} events/s")
            time.sleep(0.2)
    typer.echo(f"rebuilt {', '.join(p.name for p in selected)}")


@app.command()
def verify(
    name: Annotated[str | None, typer.Argument(help="one projection (default: all)")] = None,
) -> None:
    """Rebuild into scratch tables and compare them with the live ones; exit 1 on a difference."""
    selected = _selected(name)
    ledger = open_ledger()
    try:
        consistent = _verify_projections(ledger, selected)
    finally:
        ledger.close()
    if not consistent:
        raise typer.Exit(1)


def _verify_projections(ledger: Ledger, selected: tuple[type[Projection], ...]) -> bool:
    ensure_projections(ledger.write_engine)
    consistent = True
    with Progress(TextColumn("{task.description:12}"), BarColumn(), MofNCompleteColumn()) as bar:
        for projection in selected:
            task = bar.add_task(projection.name, total=None)

            def advance(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            verdict = verify_projection(
                ledger.write_engine, ledger.registry, projection, on_progress=advance
            )
            consistent = consistent and verdict.consistent
            bar.console.print(
                f"{verdict.projection}: "
                + (
                    f"consistent at position {verdict.position} ({verdict.rows} rows)"
                    if verdict.consistent
                    else "DIFFERS\n  " + "\n  ".join(verdict.differences)
                )
            )
    return consistent


audit = typer.Typer(help="Check the event log and the read models built from it.")
app.add_typer(audit, name="audit")


@audit.command("verify")
def audit_verify(
    projections: Annotated[
        bool, typer.Option(help="also rebuild each projection into scratch tables and compare")
    ] = True,
) -> None:
    """Positions, each model's versions, every event decodes; then the projections.

    Exit 1 if anything is wrong."""
    ledger = open_ledger(must_exist=True)
    try:
        report = _checked_log(ledger)
        _print_log_report(report)
        consistent = _verify_projections(ledger, PROJECTIONS) if projections else True
    finally:
        ledger.close()
    if not (report.sound and consistent):
        raise typer.Exit(1)


@audit.command("seal")
def audit_seal() -> None:
    """Check the log, then record the digest of its hash chain at the head: later
    audits catch any change at or before it. Keep the printed digest elsewhere too.

    Exit 1 (and no seal) if the log does not pass."""
    ledger = open_ledger(must_exist=True)
    try:
        report = _checked_log(ledger)
        _print_log_report(report)
        if not report.sound:
            raise typer.Exit(1)
        seal = record_seal(ledger.write_engine, report.head, report.digest)
    finally:
        ledger.close()
    typer.echo(f"sealed at position {seal.position} ({seal.sealed_at}): {seal.digest}")


def _checked_log(ledger: Ledger) -> LogReport:
    recorder = ledger.registry.recorder
    with _progress_on_stderr() as progress:
        task = progress.add_task("log", total=recorder.max_notification_id() or 0)
        return check_log(
            ledger.registry,
            gaps_allowed=isinstance(recorder, PostgresApplicationRecorder),
            seals=read_seals(ledger.write_engine),
            progress=lambda n: progress.advance(task, n),
        )


def _print_log_report(report: LogReport) -> None:
    typer.echo(f"log: {report.events} events of {report.models} models, head {report.head}")
    if report.gaps:
        kind = (
            "harmless on PostgreSQL (rolled-back sequence values)"
            if report.gaps_allowed
            else "LOST"
        )
        typer.echo(f"  {report.gaps} missing positions, {kind}")
        for example in report.gap_examples:
            typer.echo(f"    {example}")
    for problem in report.problems:
        typer.echo(f"  PROBLEM {problem}")
    if report.problem_count > len(report.problems):
        typer.echo(f"  ... {report.problem_count - len(report.problems)} more problems")
    typer.echo(f"log: hash chain digest at position {report.head}: {report.digest}")
    if report.latest_held:
        seal = report.latest_held
        typer.echo(
            f"log: {report.seals_held} {'seal holds' if report.seals_held == 1 else 'seals hold'}, "
            f"the latest at position {seal.position} "
            f"({seal.sealed_at}): {seal.digest}"
        )
    typer.echo("log: sound" if report.sound else "log: NOT SOUND")


def main() -> None:
    app()
