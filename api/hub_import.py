"""`POST /api/v1/models/import/huggingface`: register (or refresh) a Hub model."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import allow
from api.deps import IdempotentDep, fingerprinted
from api.errors import ERRORS
from api.schemas import HubImportRequest, HubImportResponse
from api.services import ServicesDep
from commands.hub_import import import_model
from write_model.access import Action

router = APIRouter(
    prefix="/api/v1/models",
    tags=["commands"],
    dependencies=[allow(Action.CHANGE)],
    responses=ERRORS,
)


@router.post(
    "/import/huggingface",
    response_model=HubImportResponse,
    responses={201: {"model": HubImportResponse, "description": "Registered"}},
    summary="Import a Hugging Face Hub model: metadata, card and evaluation results",
    description="The first import registers the model (201) with a trained version holding "
    "the card's evaluation results; a later import records only what changed (200).",
)
async def import_from_hub(
    body: HubImportRequest, services: ServicesDep, ctx: IdempotentDep, request: Request
) -> JSONResponse:
    """With an Idempotency-Key, a retry after a lost answer records nothing twice."""
    ctx = fingerprinted(ctx, request, body.model_dump(mode="json"))
    source = services.providers.sources["huggingface"]
    outcome = await import_model(
        services.registry, source, body.repo_id, body.project, ctx, revision=body.revision
    )
    headers = {
        "ETag": f'"{outcome.version}"',
        "X-Position": str(outcome.position),
        "X-Correlation-ID": ctx.correlation_id,
        "Location": f"/api/v1/models/{outcome.id}",
    }
    status = 201 if outcome.created else 200
    return JSONResponse(outcome.body(), status_code=status, headers=headers)
