"""``mledger``: the registry from a shell or a CI job (``pip install
'modelledger-client[cli]'``). Tables by default, ``--json`` for scripts.

Exit codes: 0 done; 2 usage; 3 not found; 4 conflict or precondition failed; 5 invalid
request; 6 unauthorized or forbidden; 7 unavailable or rate limited after the client's
retries; 1 anything else.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from itertools import islice
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


def _calls(command: F) -> F:
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


def _client() -> ModelLedger:
    return ModelLedger(options.url, options.api_key, retry=options.retry)


def _show(found: BaseModel | Iterable[BaseModel], columns: tuple[str, ...]) -> None:
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


def _pairs(texts: list[str], what: str) -> dict[str, Any]:
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


# -- models ------------------------------------------------------------------------------
@models.command("register")
@_calls
def register(
    name: str,
    project: Annotated[str, typer.Option()],
    task: Annotated[str, typer.Option()],
    framework: Annotated[str, typer.Option()],
    description: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
) -> None:
    with _client() as client:
        _show(
            client.register_model(
                name,
                project=project,
                task=task,
                framework=framework,
                description=description,
                tags=tag,
            ),
            RESULT,
        )


@models.command("get")
@_calls
def get(model_id: str, as_of: AsOf = None, at_version: int | None = None) -> None:
    with _client() as client:
        _show(client.get_model(model_id, as_of=as_of, at_version=at_version), MODEL)


@models.command("find")
@_calls
def find(project: str, name: str) -> None:
    with _client() as client:
        _show(client.find_model(project, name), MODEL)


@models.command("update")
@_calls
def update(
    model_id: str,
    description: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    framework: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
    if_match: Annotated[int | None, typer.Option(help="the version you read")] = None,
) -> None:
    changes = {"description": description, "owner": owner, "tags": tag, "task": task}
    changes["framework"] = framework
    with _client() as client:
        found = client.update_model(
            model_id, if_match=if_match, **{k: v for k, v in changes.items() if v is not None}
        )
        _show(found, RESULT)


@models.command("archive")
@_calls
def archive(model_id: str, reason: Annotated[str | None, typer.Option()] = None) -> None:
    with _client() as client:
        _show(client.archive_model(model_id, reason=reason), RESULT)


@models.command("search")
@_calls
def search(
    q: Annotated[str | None, typer.Argument()] = None,
    project: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    framework: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
    environment: Annotated[str | None, typer.Option()] = None,
    metric: Annotated[str | None, typer.Option()] = None,
    sort: Annotated[str | None, typer.Option()] = None,
    as_of: AsOf = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
) -> None:
    with _client() as client:
        found = client.search_models(
            q,
            project=project,
            task=task,
            framework=framework,
            status=status,
            tags=tag,
            environment=environment,
            metric=metric,
            sort=sort,
            as_of=as_of,
        )
        _show(list(islice(found, limit)), MODEL)


# -- training -----------------------------------------------------------------------------
@training.command("start")
@_calls
def start(
    model_id: str,
    dataset: Annotated[str, typer.Option()],
    param: Annotated[list[str] | None, typer.Option(help="a hyperparameter, name=value")] = None,
    backend: Annotated[str, typer.Option()] = "external",
) -> None:
    hyperparameters = _pairs(param or [], "hyperparameter")
    with _client() as client:
        _show(
            client.start_training(
                model_id, dataset=dataset, hyperparameters=hyperparameters, backend=backend
            ),
            RESULT,
        )


@training.command("complete")
@_calls
def complete(
    model_id: str,
    run_id: str,
    metric: Annotated[list[str] | None, typer.Option(help="name=value; repeat for more")] = None,
    artifact_uri: Annotated[str | None, typer.Option()] = None,
) -> None:
    metrics = _pairs(metric or [], "metric")
    with _client() as client:
        found = client.complete_training(
            model_id, run_id, metrics=metrics, artifact_uri=artifact_uri
        )
        _show(found, RESULT)


@training.command("fail")
@_calls
def fail(model_id: str, run_id: str, reason: Annotated[str, typer.Option()]) -> None:
    with _client() as client:
        _show(client.fail_training(model_id, run_id, reason=reason), RESULT)


@training.command("runs")
@_calls
def runs(model_id: str) -> None:
    with _client() as client:
        _show(
            client.training_runs(model_id),
            ("run_id", "state", "backend", "dataset", "model_version", "failure_reason"),
        )


# -- versions -----------------------------------------------------------------------------
VERSION = ("number", "metrics", "description", "tags", "created_at", "created_by")


@versions.command("list")
@_calls
def list_versions(model_id: str) -> None:
    with _client() as client:
        _show(client.versions(model_id), VERSION)


@versions.command("get")
@_calls
def get_version(model_id: str, number: int) -> None:
    with _client() as client:
        _show(client.get_version(model_id, number), VERSION)


@versions.command("update")
@_calls
def update_version(
    model_id: str,
    number: int,
    description: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
) -> None:
    with _client() as client:
        _show(client.update_version(model_id, number, description=description, tags=tag), RESULT)


# -- deployments --------------------------------------------------------------------------
Environment = Annotated[str, typer.Option()]


@deployments.command("deploy")
@_calls
def deploy(
    model_id: str,
    environment: Environment,
    version: int | None = None,
    endpoint_url: Annotated[str | None, typer.Option()] = None,
    target: Annotated[str | None, typer.Option(help="external, or a provider")] = None,
) -> None:
    with _client() as client:
        found = client.deploy(
            model_id,
            environment=environment,
            model_version=version,
            endpoint_url=endpoint_url,
            target=target,
        )
        _show(found, RESULT)


@deployments.command("undeploy")
@_calls
def undeploy(model_id: str, environment: Environment) -> None:
    with _client() as client:
        _show(client.undeploy(model_id, environment=environment), RESULT)


@deployments.command("rollback")
@_calls
def rollback(model_id: str, environment: Environment) -> None:
    with _client() as client:
        _show(client.rollback(model_id, environment=environment), RESULT)


@deployments.command("history")
@_calls
def deployment_history(model_id: str, as_of: AsOf = None) -> None:
    with _client() as client:
        found = client.deployments(model_id, as_of=as_of).history
        _show(
            found,
            (
                "environment",
                "model_version",
                "action",
                "from_time",
                "to_time",
                "deployed_by",
                "ended_by",
            ),
        )


# -- reading the registry -------------------------------------------------------------------
@app.command("statistics")
@_calls
def statistics(
    project: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    as_of: AsOf = None,
) -> None:
    with _client() as client:
        _show(
            client.statistics(project=project, task=task, as_of=as_of),
            ("total_models", "by_status", "by_task", "by_framework", "active_deployments"),
        )


@app.command("leaderboard")
@_calls
def leaderboard(
    metric: str,
    task: Annotated[str | None, typer.Option()] = None,
    project: Annotated[str | None, typer.Option()] = None,
    limit: int = 10,
    as_of: AsOf = None,
) -> None:
    with _client() as client:
        found = client.top_performing(metric, task=task, project=project, limit=limit, as_of=as_of)
        _show(found, ("rank", "name", "project", "task", "model_version", "value", "id"))


EVENT = ("position", "type", "model_id", "actor", "timestamp")


@app.command("history")
@_calls
def history(model_id: str) -> None:
    with _client() as client:
        _show(client.history(model_id), EVENT)


@events.command("list")
@_calls
def list_events(
    after: int = 0,
    model_id: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type")] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
) -> None:
    with _client() as client:
        found = client.events(after, model_id=model_id, types=event_type, actor=actor)
        _show(list(islice(found, limit)), EVENT)


@events.command("follow")
@_calls
def follow(
    after: Annotated[
        int | None, typer.Option(help="from this position (default: from now)")
    ] = None,
    model_id: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type")] = None,
    count: Annotated[int | None, typer.Option(help="stop after this many")] = None,
) -> None:
    """Each event as it is stored, one line each (JSON lines with --json)."""
    with _client() as client:
        followed = client.follow_events(after, model_id=model_id, types=event_type)
        for event in islice(followed, count):
            if options.json:
                print(json.dumps(event.model_dump(mode="json")), flush=True)
            else:
                print(
                    f"{event.position}\t{event.type}\t{event.model_id or ''}\t{event.actor}",
                    flush=True,
                )


def main() -> None:
    sys.exit(app())  # (typer exits 2 on a usage error)
