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
from typing import Annotated
from uuid import UUID

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.exc import InterfaceError, OperationalError

from adapters.file_modes import owner_only_folder
from commands.archive import ArchiveError, StoreNotEmpty, export_events, import_events
from commands.ports import StoreUnavailable
from modelledger.audit_cli import audit
from modelledger.bootstrap import Ledger
from modelledger.cli_support import (
    counted,
    fail,
    load_settings,
    open_ledger,
    progress_on_stderr,
    verify_projections,
)
from modelledger.deliver_cli import deliver
from modelledger.keys_cli import ensure_admin_key, keys
from modelledger.logs import configure_logging
from modelledger.migrate_cli import migrate
from modelledger.relay_cli import relay
from modelledger.settings import Settings
from modelledger.worker_cli import worker
from projections.base import Projection
from projections.worker import PROJECTIONS, ProjectionWorker, ensure_projections, projection_named
from queries.events import feed_item
from queries.ports import LogUnavailable
from queries.projections import request_rebuild
from read_model.state import read_states

app = typer.Typer(
    help="ModelLedger: an event-sourced registry for AI models.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(audit, name="audit")
app.add_typer(keys, name="keys")
app.add_typer(migrate, name="migrate")
app.command("relay")(relay)
app.command("worker")(worker)
app.command("deliver")(deliver)


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
    settings = load_settings()
    prepare_to_serve(settings)
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "modelledger.web:create_app",
        log_config=None,  # ours (modelledger.logs), in every worker process too
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,  # ours (api.observability) has the route and the correlation id
        timeout_graceful_shutdown=10,
    )


def prepare_to_serve(settings: Settings) -> None:
    """The data directory (the owner's only), the store's and the read model's tables
    (created once here, so worker processes never race to) and the first admin key."""
    owner_only_folder(settings.data_dir)
    ledger = open_ledger(settings)
    try:
        ensure_projections(ledger.write_engine)
        ensure_admin_key(ledger, settings)
    except (OperationalError, InterfaceError) as error:
        fail(f"cannot open the read database: {str(error).splitlines()[0]}")
    except (StoreUnavailable, LogUnavailable) as error:
        fail(error.detail)
    finally:
        ledger.close()


@app.command()
def events(
    model: Annotated[UUID | None, typer.Option(help="only this model's events")] = None,
    after: Annotated[int, typer.Option(min=0, help="positions after this one")] = 0,
    until: Annotated[int | None, typer.Option(min=1, help="up to this position")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
) -> None:
    """Print the event log as JSON lines, in global order.

    Opens the store named by the settings directly: no server is needed, and it may run
    while one serves."""
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
    """Write the event log to stdout as JSON lines (a backup, or a move to another store),
    ending with the digest of the log's hash chain; keep the digest printed on stderr apart
    from the file to prove later that the file is unchanged (`import --digest`)."""
    ledger = open_ledger(must_exist=True)
    try:
        total = max(0, ledger.event_log.head() - after)
        with progress_on_stderr() as progress:
            task = progress.add_task("export", total=total)
            summary = export_events(
                ledger.event_log,
                sys.stdout,
                after=after,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        ledger.close()
    typer.echo(
        f"exported {summary.events} events; hash chain digest at position "
        f"{summary.last_position}: {summary.digest}",
        err=True,
    )


@app.command("import")
def import_log(
    path: Annotated[Path, typer.Argument(help="a file written by `modelledger export`")],
    digest: Annotated[
        str | None,
        typer.Option(help="the digest `export` printed: refuse a file whose events differ"),
    ] = None,
) -> None:
    """Load an exported event log into an empty store, all or nothing, once its events
    match the digest in its footer (and the one given)."""
    if not path.is_file():
        fail(f"no such file: {path}")
    with path.open("rb") as lines:
        total = max(0, sum(1 for _ in lines) - 2)  # less the header and footer lines
    ledger = open_ledger()
    try:
        with path.open(encoding="utf-8") as lines, progress_on_stderr() as progress:
            task = progress.add_task("import", total=total)
            summary = import_events(
                ledger.registry.recorder,
                ledger.registry.mapper,
                lines,
                progress=lambda n: progress.advance(task, n),
                expected_digest=digest,
            )
    except (ArchiveError, StoreNotEmpty, UnicodeDecodeError) as error:
        fail(f"{path}: {error}; nothing was imported")
    finally:
        ledger.close()
    if not summary.verified:
        typer.echo(
            f"warning: {path} has no digest in its footer (written before exports carried "
            "one), so its events were not checked as a whole; compare the digest below "
            "with one kept from the source (`modelledger audit verify` there)",
            err=True,
        )
    typer.echo(
        f"imported {summary.events} events of {counted(summary.models, 'model')} "
        f"(positions {summary.first_position}..{summary.last_position}); "
        f"hash chain digest: {summary.digest}",
        err=True,
    )


@app.command()
def seed(
    models: Annotated[int, typer.Option(min=1, help="how many models to create")] = 100,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="commands sent at once")] = 4,
    random_seed: Annotated[int, typer.Option(help="the same seed makes the same registry")] = 7,
) -> None:
    """Fill the store with realistic demo models through the command handlers.

    Its models have real histories (training runs, failures, deployments, rollbacks),
    recorded with the actor `seed`. Opens the store directly: no server is needed, and
    it may run while one serves."""
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
        worker = ProjectionWorker(ledger.write_engine, ledger.event_log, projections=selected)
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
        consistent = verify_projections(ledger, selected)
    finally:
        ledger.close()
    if not consistent:
        raise typer.Exit(1)


def main() -> None:
    app()
