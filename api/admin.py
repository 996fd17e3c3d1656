"""Operators' routes: projections and their rebuilds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.auth import allow
from api.deps import LedgerDep
from api.errors import ERRORS
from projections.worker import PROJECTIONS
from queries.projections import event_time_in, projection_report, request_rebuild
from write_model.access import Action

router = APIRouter(
    prefix="/api/v1/admin", tags=["operations"], dependencies=[allow(Action.ADMINISTER)]
)


@router.get(
    "/projections",
    responses=ERRORS,
    summary="Each projection's position, lag (events and seconds), status and whether a "
    "live process holds it",
)
def list_projections(ledger: LedgerDep) -> list[dict[str, Any]]:
    head = ledger.event_log.head()
    versions = {p.name: p.version for p in PROJECTIONS}
    return projection_report(ledger.read_engine, head, versions, event_time_in(ledger.event_log))


@router.post(
    "/projections/{name}/rebuild",
    status_code=202,
    responses=ERRORS,
    summary="Rebuild a projection into fresh tables from position 0, then swap them in",
)
def rebuild_projection(name: str, ledger: LedgerDep) -> JSONResponse:
    request_rebuild(ledger.write_engine, name, {p.name for p in PROJECTIONS})
    return JSONResponse(
        {"name": name, "status": "rebuild requested"},
        status_code=202,
        headers={"Location": "/api/v1/admin/projections"},
    )
