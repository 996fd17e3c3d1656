"""`modelledger migrate mlflow`: import an MLflow model registry, from a live tracking
server or an export directory, through the command handlers (docs/how-to/migrate-from-mlflow.md)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from commands.mlflow_import.plan import KINDS
from commands.mlflow_import.run import ImportOptions, Summary, import_registry
from commands.ports import (
    MlflowRegistry,
    ProviderRejected,
    ProviderUnavailable,
    StoreUnavailable,
)
from modelledger.cli_support import fail, open_ledger, progress_on_stderr
from queries.ports import LogUnavailable
from write_model.metric_definition import Direction
from write_model.values import has_control_characters

migrate = typer.Typer(help="Import another registry into this one.", no_args_is_help=True)

_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DIRECTIONS = {
    "minimize": Direction.MINIMIZE,
    "lower": Direction.MINIMIZE,
    "maximize": Direction.MAXIMIZE,
    "higher": Direction.MAXIMIZE,
}


@migrate.command("mlflow")
def mlflow(
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="a live MLflow tracking server's URL (else MLFLOW_TRACKING_URI)"),
    ] = None,
    from_export_dir: Annotated[
        Path | None,
        typer.Option(help="a directory written by MLflow's export-import tools (export-models)"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="MLFLOW_TRACKING_TOKEN", help="bearer token for the server"),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option(envvar="MLFLOW_TRACKING_USERNAME", help="for MLflow's basic auth"),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="MLFLOW_TRACKING_PASSWORD", help="for MLflow's basic auth"),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(help="the project of every model (else its `project` tag, else mlflow)"),
    ] = None,
    metric_directions: Annotated[
        Path | None,
        typer.Option(help='a JSON file: {"metric": "minimize" | "maximize", ...}'),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be imported; write nothing")
    ] = False,
) -> None:
    """Import an MLflow model registry: models, versions with their runs' metrics and
    parameters, aliases and stages as environments. Safe to run again: only what changed
    in MLflow is recorded."""
    if from_export_dir is None:  # (MLFLOW_TRACKING_URI is often set: a directory wins)
        tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if (tracking_uri is None) == (from_export_dir is None):
        fail("give one of --tracking-uri URL or --from-export-dir DIR")
    if project is not None and not _PROJECT.match(project):
        fail(f"--project {project!r} is not a project name (letters, digits, . _ -; up to 100)")
    options = ImportOptions(project, dry_run, _directions(metric_directions))
    basic = (username, password or "") if username else None
    source = _source(tracking_uri, from_export_dir, token, basic)
    ledger = open_ledger()
    try:
        with progress_on_stderr() as progress:
            watcher = _Bars(progress)
            summary = asyncio.run(
                import_registry(ledger.registry, ledger.event_log, source, options, watcher)
            )
    except (ProviderUnavailable, ProviderRejected) as error:
        fail(f"{error.reason}; nothing more was recorded (run it again to go on)")
    except (StoreUnavailable, LogUnavailable) as error:
        fail(f"{error.detail}; run it again to go on where it stopped")
    finally:
        ledger.close()
        getattr(source, "close", lambda: None)()
    _print(summary)


def _source(
    uri: str | None, directory: Path | None, token: str | None, basic: tuple[str, str] | None
) -> MlflowRegistry:
    if uri is not None:
        from adapters.mlflow_rest import MlflowServer

        if not uri.startswith(("http://", "https://")):
            fail(f"--tracking-uri {uri!r} is not an http(s) URL of an MLflow server")
        try:
            return MlflowServer(uri, token, basic)
        except httpx.InvalidURL as error:
            fail(f"--tracking-uri {uri!r} is not a URL: {error}")
    from adapters.mlflow_export import MlflowExportDirectory

    assert directory is not None
    if not directory.is_dir():
        fail(f"--from-export-dir {directory}: no such directory")
    return MlflowExportDirectory(str(directory))


def _directions(path: Path | None) -> dict[str, Direction]:
    if path is None:
        return {}
    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail(f"--metric-directions {path}: {error}")
    if not isinstance(given, dict):
        fail(f'--metric-directions {path}: expected {{"metric": "minimize" | "maximize"}}')
    directions = {}
    for metric, word in given.items():
        direction = _DIRECTIONS.get(str(word).lower())
        if direction is None or not metric or len(metric) > 100 or has_control_characters(metric):
            fail(f"--metric-directions {path}: {metric!r}: {word!r} is not minimize or maximize")
        directions[metric] = direction
    return directions


class _Bars:
    """Progress on stderr: what was read from MLflow, then what was recorded."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.reading: dict[str, TaskID] = {}
        self.recording: TaskID | None = None

    def read(self, what: str, n: int) -> None:
        if what not in self.reading:
            self.reading[what] = self.progress.add_task(f"reading {what}", total=None)
        self.progress.advance(self.reading[what], n)

    def planned(self, steps: int) -> None:
        for task in self.reading.values():
            done = self.progress.tasks[task].completed
            self.progress.update(task, total=done, completed=done)
        self.recording = self.progress.add_task("recording", total=steps)

    def recorded(self, n: int) -> None:
        if self.recording is not None:
            self.progress.advance(self.recording, n)


def _print(summary: Summary) -> None:
    console = Console(soft_wrap=True)  # a line per fact, also when piped
    verb = "would record" if summary.dry_run else "recorded"
    times = "MLflow's own times" if summary.mlflow_times else "the time of this import"
    console.print(
        f"MLflow at {summary.where}: {summary.models} registered models, "
        f"{summary.versions} versions. {verb.capitalize()} at {times}"
        + (" (dry run: nothing was written)." if summary.dry_run else ".")
    )
    table = Table("", verb)
    for kind in KINDS:
        table.add_row(kind, str(summary.done[kind]))
    table.add_row("models unchanged", str(summary.unchanged))
    table.add_row("skipped", str(len(summary.skipped)))
    console.print(table)
    for skipped in summary.skipped:
        console.print(f"skipped {skipped.what}: {skipped.reason}", markup=False, highlight=False)
