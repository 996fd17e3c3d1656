"""mledger's commands that change the registry (and read what they changed)."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer

from modelledger_client.cli.app import (
    MODEL,
    RESULT,
    AsOf,
    Tags,
    calls,
    client_of_options,
    deployments,
    models,
    pairs,
    show,
    training,
    versions,
)


# -- models ------------------------------------------------------------------------------
@models.command("register")
@calls
def register(
    name: str,
    project: Annotated[str, typer.Option()],
    task: Annotated[str, typer.Option()],
    framework: Annotated[str, typer.Option()],
    description: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
) -> None:
    with client_of_options() as client:
        show(
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
@calls
def get(model_id: str, as_of: AsOf = None, at_version: int | None = None) -> None:
    with client_of_options() as client:
        show(client.get_model(model_id, as_of=as_of, at_version=at_version), MODEL)


@models.command("find")
@calls
def find(project: str, name: str) -> None:
    with client_of_options() as client:
        show(client.find_model(project, name), MODEL)


@models.command("update")
@calls
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
    with client_of_options() as client:
        found = client.update_model(
            model_id, if_match=if_match, **{k: v for k, v in changes.items() if v is not None}
        )
        show(found, RESULT)


@models.command("archive")
@calls
def archive(model_id: str, reason: Annotated[str | None, typer.Option()] = None) -> None:
    with client_of_options() as client:
        show(client.archive_model(model_id, reason=reason), RESULT)


@models.command("search")
@calls
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
    with client_of_options() as client:
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
        show(list(islice(found, limit)), MODEL)


# -- training -----------------------------------------------------------------------------
@training.command("start")
@calls
def start(
    model_id: str,
    dataset: Annotated[str, typer.Option()],
    param: Annotated[list[str] | None, typer.Option(help="a hyperparameter, name=value")] = None,
    backend: Annotated[str, typer.Option()] = "external",
) -> None:
    hyperparameters = pairs(param or [], "hyperparameter")
    with client_of_options() as client:
        show(
            client.start_training(
                model_id, dataset=dataset, hyperparameters=hyperparameters, backend=backend
            ),
            RESULT,
        )


@training.command("complete")
@calls
def complete(
    model_id: str,
    run_id: str,
    metric: Annotated[list[str] | None, typer.Option(help="name=value; repeat for more")] = None,
    artifact_uri: Annotated[str | None, typer.Option()] = None,
) -> None:
    metrics = pairs(metric or [], "metric")
    with client_of_options() as client:
        found = client.complete_training(
            model_id, run_id, metrics=metrics, artifact_uri=artifact_uri
        )
        show(found, RESULT)


@training.command("fail")
@calls
def fail(model_id: str, run_id: str, reason: Annotated[str, typer.Option()]) -> None:
    with client_of_options() as client:
        show(client.fail_training(model_id, run_id, reason=reason), RESULT)


@training.command("runs")
@calls
def runs(model_id: str) -> None:
    with client_of_options() as client:
        show(
            client.training_runs(model_id),
            ("run_id", "state", "backend", "dataset", "model_version", "failure_reason"),
        )


# -- versions -----------------------------------------------------------------------------
VERSION = ("number", "metrics", "description", "tags", "created_at", "created_by")


@versions.command("list")
@calls
def list_versions(model_id: str) -> None:
    with client_of_options() as client:
        show(client.versions(model_id), VERSION)


@versions.command("get")
@calls
def get_version(model_id: str, number: int) -> None:
    with client_of_options() as client:
        show(client.get_version(model_id, number), VERSION)


@versions.command("update")
@calls
def update_version(
    model_id: str,
    number: int,
    description: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
) -> None:
    with client_of_options() as client:
        show(client.update_version(model_id, number, description=description, tags=tag), RESULT)


# -- deployments --------------------------------------------------------------------------
Environment = Annotated[str, typer.Option()]


@deployments.command("deploy")
@calls
def deploy(
    model_id: str,
    environment: Environment,
    version: int | None = None,
    endpoint_url: Annotated[str | None, typer.Option()] = None,
    target: Annotated[str | None, typer.Option(help="external, or a provider")] = None,
) -> None:
    with client_of_options() as client:
        found = client.deploy(
            model_id,
            environment=environment,
            model_version=version,
            endpoint_url=endpoint_url,
            target=target,
        )
        show(found, RESULT)


@deployments.command("undeploy")
@calls
def undeploy(model_id: str, environment: Environment) -> None:
    with client_of_options() as client:
        show(client.undeploy(model_id, environment=environment), RESULT)


@deployments.command("rollback")
@calls
def rollback(model_id: str, environment: Environment) -> None:
    with client_of_options() as client:
        show(client.rollback(model_id, environment=environment), RESULT)


@deployments.command("history")
@calls
def deployment_history(model_id: str, as_of: AsOf = None) -> None:
    with client_of_options() as client:
        found = client.deployments(model_id, as_of=as_of).history
        show(
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
