"""What the CLI's commands share: opening the store, failing in one line,
progress on stderr, and verifying projections against a rebuild."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from adapters.event_store import UnsupportedDatabaseUrl, describe
from modelledger.bootstrap import Ledger, bootstrap
from modelledger.settings import Settings
from projections.base import Projection
from projections.verify import verify_projection
from projections.worker import ensure_projections


def load_settings() -> Settings:
    """The settings, or one line per bad one and exit 1: no traceback, and never the
    value (it may be a key)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = [
            f"MODELLEDGER_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        ]
        fail("invalid settings: " + "; ".join(problems))


def open_ledger(settings: Settings | None = None, *, must_exist: bool = False) -> Ledger:
    """The ledger, or a one-line error and exit 1 (no traceback for a bad setting)."""
    settings = settings or load_settings()
    url = settings.store_url()
    if must_exist and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        fail(f"no event store at {url} (check MODELLEDGER_DATABASE_URL / MODELLEDGER_DATA_DIR)")
    try:
        return bootstrap(settings)
    except (UnsupportedDatabaseUrl, PersistenceError, OSError) as error:
        fail(f"cannot open the event store ({describe(url)}): {error}")


def counted(number: int, thing: str) -> str:
    """``1 model``, ``2 models``."""
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def progress_on_stderr() -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=Console(stderr=True))


def verify_projections(ledger: Ledger, selected: tuple[type[Projection], ...]) -> bool:
    ensure_projections(ledger.write_engine)
    consistent = True
    with Progress(TextColumn("{task.description:12}"), BarColumn(), MofNCompleteColumn()) as bar:
        for projection in selected:
            task = bar.add_task(projection.name, total=None)

            def advance(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            verdict = verify_projection(
                ledger.write_engine, ledger.event_log, projection, on_progress=advance
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
