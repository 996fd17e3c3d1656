"""The `modelledger` command line: serve, events, seed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn
from uuid import UUID

import typer
from eventsourcing.persistence import PersistenceError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.event_store import UnsupportedDatabaseUrl, describe
from modelledger.bootstrap import Ledger, bootstrap
from modelledger.settings import Settings
from queries.models import history_item

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
) -> None:
    """Run the HTTP API (embedded default: a SQLite file under ./var)."""
    import uvicorn

    # Worker processes read their settings from the environment, so pass overrides there.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"MODELLEDGER_{name}"] = str(value)
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Create the store's tables once here, so worker processes never race to.
    open_ledger(settings).close()
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
                item = {
                    "model_id": str(notification.originator_id),
                    **history_item(notification.id, event),
                }
                sys.stdout.write(json.dumps(item, default=str) + "\n")
                printed += 1
                if limit is not None and printed >= limit:
                    break
    finally:
        ledger.close()


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


def main() -> None:
    app()
