"""Health and service information."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.auth import allow
from api.deps import LedgerDep
from commands.errors import StoreUnavailable
from commands.registry import store_errors
from modelledger.bootstrap import Ledger
from queries.reading import ReadStoreUnavailable, read_errors
from read_model.state import read_states
from write_model.access import Action

router = APIRouter(tags=["operations"])


def package_version() -> str:
    try:
        return version("modelledger")
    except PackageNotFoundError:
        return "0+unknown"


@router.get(
    "/health",
    summary="Liveness, event store reachability, projections' status",
    responses={503: {"description": "the event store is unreachable"}},
)
def health(ledger: LedgerDep) -> JSONResponse:
    try:
        with store_errors():
            ledger.registry.ledger.ping()
    except StoreUnavailable:
        return JSONResponse({"status": "unavailable", "event_store": "down"}, status_code=503)
    projections = projection_statuses(ledger)
    # A stopped projection leaves its tables stale: still serving, but degraded.
    degraded = any(status != "running" for status in projections.values())
    return JSONResponse(
        {
            "status": "degraded" if degraded else "ok",
            "event_store": "up",
            "projections": projections,
        }
    )


def projection_statuses(ledger: Ledger) -> dict[str, str]:
    try:
        with read_errors(), ledger.read_engine.connect() as conn:
            states = read_states(conn)
    except ReadStoreUnavailable:
        return {"read_store": "down"}
    statuses = {name: state.status for name, state in sorted(states.items())}
    if ledger.worker is not None:  # in-process trouble not yet in the state rows
        for name, error in ledger.worker.errors().items():
            statuses[name] = f"waiting: {error}"
    return statuses


@router.get(
    "/api/info",
    summary="What this service is and how it is configured",
    dependencies=[allow(Action.READ)],
)
async def info(ledger: LedgerDep) -> dict[str, Any]:
    return {
        "name": "ModelLedger",
        "version": package_version(),
        "api_version": "v1",
        "event_store": ledger.backend,
        "group_commit": ledger.settings.group_commit,
        "workers": ledger.settings.workers,
    }
