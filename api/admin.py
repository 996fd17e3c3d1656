"""Operators' routes: projections and their rebuilds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.auth import allow
from api.errors import ERRORS
from api.operations_schemas import ProjectionEntry, RebuildRequested
from api.queries import MinPosition
from api.services import ServicesDep
from queries.projections import event_time_in, projection_report, request_rebuild
from queries.reading import within_the_log
from write_model.access import Action

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["operations"],
    dependencies=[allow(Action.ADMINISTER)],
    responses=ERRORS,
)


@router.get(
    "/projections",
    response_model=list[ProjectionEntry],
    summary="Each projection's position, lag (events and seconds), status and whether a "
    "live process holds it",
)
def list_projections(services: ServicesDep, min_position: MinPosition = None) -> JSONResponse:
    """Where each projection stands now (a `min_position` never waits here: it is only
    refused past the log's end, as on every read)."""
    operations, head = services.operations, services.event_log.head()
    if min_position is not None:
        within_the_log(min_position, head)
    report = projection_report(
        operations.read_engine,
        head,
        operations.projection_versions,
        event_time_in(services.event_log),
    )
    return JSONResponse(report)


@router.post(
    "/projections/{name}/rebuild",
    status_code=202,
    response_model=RebuildRequested,
    summary="Rebuild a projection into fresh tables from position 0, then swap them in",
)
def rebuild_projection(name: str, services: ServicesDep) -> JSONResponse:
    operations = services.operations
    request_rebuild(operations.write_engine, name, set(operations.projection_versions))
    return JSONResponse(
        {"name": name, "status": "rebuild requested"},
        status_code=202,
        headers={"Location": "/api/v1/admin/projections"},
    )
