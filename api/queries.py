"""The queries router (GET). Model reads answer from the event log for now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.commands import ERRORS
from api.deps import BadRequest, RegistryDep
from api.schemas import HistoryResponse, ModelResponse
from queries.models import get_model, model_history, model_view

router = APIRouter(prefix="/api/v1/models", tags=["queries"])


@router.get(
    "/{model_id}",
    response_model=ModelResponse,
    responses=ERRORS,
    summary="A model now, at a version, or as it was at a time",
)
def read_model(
    model_id: UUID,
    registry: RegistryDep,
    at_version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    as_of: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
) -> JSONResponse:
    if as_of is not None and at_version is not None:
        raise BadRequest("ask for at_version or as_of, not both", field="as_of")
    if as_of is not None and as_of.tzinfo is None:
        raise BadRequest("as_of needs a time zone, e.g. 2026-11-26T12:00:00Z", field="as_of")
    model = get_model(registry, model_id, at_version=at_version, as_of=as_of)
    view: dict[str, Any] = model_view(model)
    return JSONResponse(view, headers={"ETag": f'"{model.version}"'})


@router.get(
    "/{model_id}/history",
    response_model=HistoryResponse,
    responses=ERRORS,
    summary="The audit trail: every event of the model",
)
def read_history(model_id: UUID, registry: RegistryDep) -> dict[str, Any]:
    return {"id": str(model_id), "items": model_history(registry, model_id)}
