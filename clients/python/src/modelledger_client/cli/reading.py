"""mledger's commands that read the registry: statistics, leaderboards, the log."""

from __future__ import annotations

import json
from itertools import islice
from typing import Annotated

import typer

from modelledger_client.cli.app import (
    AsOf,
    app,
    calls,
    client_of_options,
    events,
    options,
    show,
)


# -- reading the registry -------------------------------------------------------------------
@app.command("statistics")
@calls
def statistics(
    project: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    as_of: AsOf = None,
) -> None:
    with client_of_options() as client:
        show(
            client.statistics(project=project, task=task, as_of=as_of),
            ("total_models", "by_status", "by_task", "by_framework", "active_deployments"),
        )


@app.command("leaderboard")
@calls
def leaderboard(
    metric: str,
    task: Annotated[str | None, typer.Option()] = None,
    project: Annotated[str | None, typer.Option()] = None,
    limit: int = 10,
    as_of: AsOf = None,
) -> None:
    with client_of_options() as client:
        found = client.top_performing(metric, task=task, project=project, limit=limit, as_of=as_of)
        show(found, ("rank", "name", "project", "task", "model_version", "value", "id"))


EVENT = ("position", "type", "model_id", "actor", "timestamp")


@app.command("history")
@calls
def history(model_id: str) -> None:
    with client_of_options() as client:
        show(client.history(model_id), EVENT)


@events.command("list")
@calls
def list_events(
    after: int = 0,
    model_id: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type")] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
) -> None:
    with client_of_options() as client:
        found = client.events(after, model_id=model_id, types=event_type, actor=actor)
        show(list(islice(found, limit)), EVENT)


@events.command("follow")
@calls
def follow(
    after: Annotated[
        int | None, typer.Option(help="from this position (default: from now)")
    ] = None,
    model_id: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type")] = None,
    count: Annotated[int | None, typer.Option(help="stop after this many")] = None,
) -> None:
    """Each event as it is stored, one line each (JSON lines with --json)."""
    with client_of_options() as client:
        followed = client.follow_events(after, model_id=model_id, types=event_type)
        for event in islice(followed, count):
            if options.json:
                print(json.dumps(event.model_dump(mode="json")), flush=True)
            else:
                print(
                    f"{event.position}\t{event.type}\t{event.model_id or ''}\t{event.actor}",
                    flush=True,
                )
