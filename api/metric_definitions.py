"""Metric definitions: how each metric is read (lower or higher is better). Everyone
reads them; admins declare (PUT) and remove (DELETE) them. ``{name}`` is the rest of the
path, so names such as ``eval/loss`` or ``accuracy@squad`` need no escaping."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PrincipalDep, allow
from api.deps import ActorDep, IdempotentDep, fingerprinted
from api.errors import ERRORS
from api.queries import MinPosition, sent
from api.services import ServicesDep
from commands.handlers import run_once
from commands.messages import MetricName, Reason
from commands.metric_definitions import (
    DefineMetric,
    RemoveMetricDefinition,
    Unit,
    define_metric,
    remove_metric_definition,
)
from commands.registry import CommandResult
from queries.metric_definitions import GetMetricDefinition, ListMetricDefinitions
from write_model.access import Action
from write_model.metric_definition import Direction

router = APIRouter(prefix="/api/v1/metric-definitions", tags=["metrics"], responses=ERRORS)

NamePath = Annotated[
    MetricName,
    Path(description="the metric's name, as versions report it (it may hold '/')"),
]
Source = Literal["declared", "default"]


class DefineMetricRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"direction": "minimize", "unit": "ms", "description": "p50 latency"}]
        },
    )

    direction: Direction = Field(description="minimize: lower is better; maximize: higher is")
    unit: Unit | None = Field(default=None, description="e.g. ms, USD, MB")
    description: Reason | None = Field(default=None, description="what the metric measures")


class MetricDefinitionView(BaseModel):
    name: str
    direction: Direction
    source: Source = Field(description="declared by a team, or the default its name gives")
    unit: str | None
    description: str | None
    versions: int = Field(description="how many trained versions (that you may see) report it")
    changed_at: str | None = Field(description="when it was last declared (null: default)")
    changed_by: str | None


class MetricDefinitionsResponse(BaseModel):
    items: list[MetricDefinitionView] = Field(description="by name")


class MetricDefinitionChanged(BaseModel):
    id: str = Field(description="the definition's id (one per metric name)")
    version: int = Field(description="the definition's aggregate version")
    position: int | None = Field(description="send as min_position to read it back")
    name: str
    direction: Direction = Field(description="how the metric is read from now on")
    source: Source
    unit: str | None
    description: str | None


@router.get(
    "",
    response_model=MetricDefinitionsResponse,
    dependencies=[allow(Action.READ)],
    summary="Every metric seen or declared: its direction, and how many versions report it",
)
async def list_metric_definitions(
    services: ServicesDep, caller: PrincipalDep, min_position: MinPosition = None
) -> Response:
    query = ListMetricDefinitions(min_position=min_position)
    return sent(await services.catalogue.metric_definitions(query, caller.visible_projects))


@router.get(
    "/{name:path}",
    response_model=MetricDefinitionView,
    dependencies=[allow(Action.READ)],
    summary="How one metric is read (any name: one nobody declared has its default)",
)
async def get_metric_definition(
    name: NamePath, services: ServicesDep, caller: PrincipalDep, min_position: MinPosition = None
) -> Response:
    query = GetMetricDefinition(name=name, min_position=min_position)
    return sent(await services.catalogue.metric_definitions(query, caller.visible_projects))


@router.put(
    "/{name:path}",
    response_model=MetricDefinitionChanged,
    responses={201: {"model": MetricDefinitionChanged, "description": "Declared first"}},
    dependencies=[allow(Action.ADMINISTER)],
    summary="Declare how a metric is read: rankings apply it at once",
)
async def put_metric_definition(
    name: NamePath, body: DefineMetricRequest, services: ServicesDep, ctx: ActorDep
) -> JSONResponse:
    """201 when the metric is declared for the first time, else 200. The same declaration
    again records nothing (and answers the same). A name holding `?`, `#` or `%` is sent
    percent-encoded, as in any URL."""
    command = DefineMetric(name=name, **body.model_dump())
    result, first = await to_thread.run_sync(define_metric, services.registry, command, ctx)
    return _changed(result, 201 if first else 200)


@router.delete(
    "/{name:path}",
    response_model=MetricDefinitionChanged,
    dependencies=[allow(Action.ADMINISTER)],
    summary="Remove a metric's definition: it takes its name's default direction again",
)
async def delete_metric_definition(
    name: NamePath, services: ServicesDep, ctx: IdempotentDep, request: Request
) -> JSONResponse:
    """With an Idempotency-Key, a retry after a lost answer answers as the first did."""
    ctx, command = fingerprinted(ctx, request, None), RemoveMetricDefinition(name=name)

    def remove() -> CommandResult:
        return remove_metric_definition(services.registry, command, ctx)

    result = await to_thread.run_sync(run_once, services.registry, ctx, remove)
    return _changed(result)


def _changed(result: CommandResult, status_code: int = 200) -> JSONResponse:
    headers = {"ETag": f'"{result.version}"', "X-Position": str(result.position)}
    if status_code == 201:
        headers["Location"] = f"/api/v1/metric-definitions/{quote(result.details['name'])}"
    return JSONResponse(result.body(), status_code=status_code, headers=headers)
