"""The command line's frame: its groups, global options, and how calls are shown
and how refusals become exit codes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from modelledger_client import errors
from modelledger_client._sync.client import ModelLedger
from modelledger_client.retries import RetryPolicy

EXIT_CODES: tuple[tuple[type[errors.ModelLedgerError], int], ...] = (
    (errors.NotFound, 3),
    (errors.Conflict, 4),
    (errors.PreconditionFailed, 4),
    (errors.InvalidRequest, 5),
    (errors.Unauthorized, 6),
    (errors.Forbidden, 6),
    (errors.Unavailable, 7),
    (errors.RateLimited, 7),
)

app = typer.Typer(no_args_is_help=True, help="The ModelLedger registry from a shell.")
models = typer.Typer(no_args_is_help=True, help="Register, read, change and search models.")
training = typer.Typer(no_args_is_help=True, help="Training runs.")
versions = typer.Typer(no_args_is_help=True, help="Trained versions.")
deployments = typer.Typer(no_args_is_help=True, help="Deploy, undeploy, roll back.")
events = typer.Typer(no_args_is_help=True, help="The event log, as pages or live.")
for group, name in (
    (models, "models"),
    (training, "training"),
    (versions, "versions"),
    (deployments, "deployments"),
    (events, "events"),
):
    app.add_typer(group, name=name)


class Options:
    url: str | None = None
    api_key: str | None = None
    json: bool = False
    retry: RetryPolicy = RetryPolicy()


options = Options()


@app.callback()
def _global(
    url: Annotated[str | None, typer.Option(envvar="MODELLEDGER_URL", help="the server")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="MODELLEDGER_API_KEY", help="an API key")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, for scripts")] = False,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, help="tries per call (connection errors, 503, 429)")
    ] = RetryPolicy.attempts,
) -> None:
    options.url, options.api_key, options.json = url, api_key, as_json
    options.retry = RetryPolicy(attempts=attempts)


F = TypeVar("F", bound=Callable[..., Any])


def calls(command: F) -> F:
    """A command that reaches the registry: its refusals become exit codes."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except errors.ModelLedgerError as refused:
            code = next((c for kind, c in EXIT_CODES if isinstance(refused, kind)), 1)
            if options.json:
                print(json.dumps({"error": refused.problem, "status": refused.status}))
            else:
                Console(stderr=True).print(f"[red]{refused}[/red]")
                for field, message in getattr(refused, "fields", {}).items():
                    Console(stderr=True).print(f"  {field}: {message}")
            raise typer.Exit(code) from None

    return run  # type: ignore[return-value]


def client_of_options() -> ModelLedger:
    return ModelLedger(options.url, options.api_key, retry=options.retry)


def show(found: BaseModel | Iterable[BaseModel], columns: tuple[str, ...]) -> None:
    rows = [found] if isinstance(found, BaseModel) else list(found)
    if options.json:
        dumped = [row.model_dump(mode="json") for row in rows]
        print(json.dumps(dumped[0] if isinstance(found, BaseModel) else dumped, indent=2))
        return
    table = Table(*columns)
    for row in rows:
        data = row.model_dump(mode="json")
        table.add_row(*(_cell(data.get(column)) for column in columns))
    Console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(_cell, value))
    return "" if value is None else str(value)


def pairs(texts: list[str], what: str) -> dict[str, Any]:
    """``name=value`` options, numbers read as numbers."""
    found: dict[str, Any] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"write each {what} as name=value, not {text!r}")
        try:
            found[name] = float(value) if what == "metric" else json.loads(value)
        except ValueError:
            if what == "metric":
                raise typer.BadParameter(f"metric {name}: {value!r} is not a number") from None
            found[name] = value
        if what == "metric" and not math.isfinite(found[name]):
            raise typer.BadParameter(f"metric {name}: {value!r} is not a finite number")
    return found


RESULT = ("id", "version", "position", "run_id", "model_version")
MODEL = ("id", "name", "project", "task", "framework", "status", "latest_version", "tags")
Tags = Annotated[list[str] | None, typer.Option("--tag", help="repeat for more")]
AsOf = Annotated[str | None, typer.Option(help="RFC 3339 time: as the registry stood then")]
