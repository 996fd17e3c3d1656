"""The commands router: POST/PATCH/PUT/DELETE, one command each -> {id, version, position}."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from api.auth import allow
from api.deps import ContextDep, RegistryDep
from api.errors import ERRORS, REFUSALS, status_for
from api.schemas import (
    CommandResponse,
    CompleteTrainingRequest,
    CreateModelRequest,
    DeployRequest,
    EnvironmentRequest,
    FailTrainingRequest,
    TrainRequest,
    UpdateModelRequest,
    UpdateVersionRequest,
)
from api.services import ServicesDep, get_services
from commands.errors import BackendNotConfigured
from commands.handlers import handle
from commands.idempotency import fingerprint
from commands.messages import (
    ArchiveModel,
    Command,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    Reason,
    RollBackDeployment,
    RunId,
    TrainModel,
    UndeployModel,
    UpdateModel,
    UpdateVersion,
)
from commands.registry import CommandContext, ModelRegistry
from write_model.access import Action
from write_model.values import EXTERNAL

router = APIRouter(
    prefix="/api/v1/models",
    tags=["commands"],
    dependencies=[allow(Action.CHANGE)],
    responses=ERRORS,
)

RunIdPath = Annotated[RunId, Path(description="the run_id returned by train")]
# A provider's endpoint: the provider carries the command out (status pending).
PENDING: dict[str, Any] = {
    "model": CommandResponse,
    "description": "Accepted: a provider carries it out; the outcome follows in the log",
}


async def run(
    registry: ModelRegistry,
    command: Command,
    ctx: CommandContext,
    request: Request,
    body: Any,
    status_code: int = 200,
) -> JSONResponse:
    if ctx.idempotency is not None:
        key = dataclasses.replace(
            ctx.idempotency,
            fingerprint=fingerprint(request.method, request.url.path, body, ctx.sender),
        )
        ctx = dataclasses.replace(ctx, idempotency=key)
    counted: Counter = get_services(request).api_metrics.commands
    try:
        result = await handle(registry, command, ctx)
    except REFUSALS as error:
        counted.labels(type(command).__name__, str(status_for(error)[0])).inc()
        raise
    counted.labels(type(command).__name__, "ok").inc()
    headers = {
        "ETag": f'"{result.version}"',
        "X-Position": str(result.position),
        "X-Correlation-ID": ctx.correlation_id,
    }
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if result.details.get("status") == "pending":
        status_code = 202  # a provider carries it out; the outcome follows in the log
    if status_code == 201:
        headers["Location"] = f"/api/v1/models/{result.id}"
    return JSONResponse(result.body(), status_code=status_code, headers=headers)


def _require_configured(name: str, configured: Mapping[str, object], field: str) -> None:
    if name != EXTERNAL and name not in configured:
        raise BackendNotConfigured(
            f"{name!r} is not configured on this registry (its credentials are not set)",
            field=field,
        )


def _json(body: Any) -> Any:
    return body.model_dump(mode="json", exclude_unset=True) if body is not None else None


@router.post(
    "",
    status_code=201,
    response_model=CommandResponse,
    summary="Register a model",
)
async def create_model(
    body: CreateModelRequest, registry: RegistryDep, ctx: ContextDep, request: Request
) -> JSONResponse:
    """The model's id is derived from its project and name, so a name is unique within its
    project (a second create is a 409, even concurrently). The 201 names the new model in
    `Location`; `owner` defaults to the key's name."""
    command = CreateModel(**body.model_dump())
    return await run(registry, command, ctx, request, _json(body), status_code=201)


@router.patch(
    "/{model_id}",
    response_model=CommandResponse,
    summary="Update a model's metadata",
)
@router.put(
    "/{model_id}",
    response_model=CommandResponse,
    summary="Update a model's metadata (same as PATCH)",
)
async def update_model(
    model_id: UUID,
    body: UpdateModelRequest,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
) -> JSONResponse:
    """Changes only the fields sent: a field that is absent or `null` is left as it is (so
    `PUT`, like `PATCH`, replaces nothing it is not given). An update that changes nothing
    records no event."""
    command = UpdateModel(model_id=model_id, **body.model_dump(exclude_unset=True))
    return await run(registry, command, ctx, request, _json(body))


@router.delete(
    "/{model_id}",
    response_model=CommandResponse,
    summary="Archive a model (its history stays readable)",
)
async def archive_model(
    model_id: UUID,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
    reason: Annotated[Reason, Query(description="why; kept in the ModelArchived event")] = "",
) -> JSONResponse:
    command = ArchiveModel(model_id=model_id, reason=reason)
    return await run(registry, command, ctx, request, {"reason": reason})


@router.patch(
    "/{model_id}/versions/{number}",
    response_model=CommandResponse,
    summary="Describe and tag a trained version",
)
async def update_version(
    model_id: UUID,
    number: Annotated[int, Path(ge=1, le=10**9)],
    body: UpdateVersionRequest,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
) -> JSONResponse:
    """Changes only the fields sent, recorded as a `VersionUpdated` event (in the history,
    and in reads as of any later moment); a change that changes nothing records none.
    A version's metrics never change."""
    changes = body.model_dump(exclude_none=True)
    command = UpdateVersion(model_id=model_id, model_version=number, **changes)
    return await run(registry, command, ctx, request, _json(body))


@router.post(
    "/{model_id}/train",
    status_code=202,
    response_model=CommandResponse,
    summary="Start a training run (openai: ModelLedger runs the fine-tuning job)",
)
async def train_model(
    model_id: UUID, body: TrainRequest, services: ServicesDep, ctx: ContextDep, request: Request
) -> JSONResponse:
    _require_configured(body.backend, services.providers.trainers, "backend")
    command = TrainModel(model_id=model_id, **body.model_dump())
    registry = services.registry
    return await run(registry, command, ctx, request, _json(body), status_code=202)


@router.post(
    "/{model_id}/training-runs/{run_id}/complete",
    response_model=CommandResponse,
    summary="Complete a training run with its metrics",
)
async def complete_training(
    model_id: UUID,
    run_id: RunIdPath,
    body: CompleteTrainingRequest,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
) -> JSONResponse:
    command = CompleteTraining(model_id=model_id, run_id=run_id, **body.model_dump())
    return await run(registry, command, ctx, request, _json(body))


@router.post(
    "/{model_id}/training-runs/{run_id}/fail",
    response_model=CommandResponse,
    summary="Record that a training run failed",
)
async def fail_training(
    model_id: UUID,
    run_id: RunIdPath,
    body: FailTrainingRequest,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
) -> JSONResponse:
    command = FailTraining(model_id=model_id, run_id=run_id, **body.model_dump())
    return await run(registry, command, ctx, request, _json(body))


@router.post(
    "/{model_id}/deploy",
    response_model=CommandResponse,
    responses={202: PENDING},
    summary="Deploy a trained version to an environment (huggingface: 202, pending)",
)
async def deploy_model(
    model_id: UUID, body: DeployRequest, services: ServicesDep, ctx: ContextDep, request: Request
) -> JSONResponse:
    _require_configured(body.target, services.providers.deployers, "target")
    command = DeployModel(model_id=model_id, **body.model_dump())
    registry = services.registry
    return await run(registry, command, ctx, request, _json(body))


@router.post(
    "/{model_id}/undeploy",
    response_model=CommandResponse,
    responses={202: PENDING},
    summary="Remove the model from an environment (a provider endpoint: 202, pending)",
)
async def undeploy_model(
    model_id: UUID,
    body: EnvironmentRequest,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
) -> JSONResponse:
    command = UndeployModel(model_id=model_id, **body.model_dump())
    return await run(registry, command, ctx, request, _json(body))


@router.post(
    "/{model_id}/rollback",
    response_model=CommandResponse,
    summary="Serve the version an environment served before",
)
async def roll_back(
    model_id: UUID,
    body: EnvironmentRequest,
    registry: RegistryDep,
    ctx: ContextDep,
    request: Request,
) -> JSONResponse:
    command = RollBackDeployment(model_id=model_id, **body.model_dump())
    return await run(registry, command, ctx, request, _json(body))
