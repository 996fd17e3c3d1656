"""Health and service information."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import LedgerDep
from commands.errors import StoreUnavailable
from commands.registry import store_errors

router = APIRouter(tags=["operations"])


def package_version() -> str:
    try:
        return version("modelledger")
    except PackageNotFoundError:
        return "0+unknown"


@router.get("/health", summary="Liveness and event store reachability")
def health(ledger: LedgerDep) -> JSONResponse:
    try:
        with store_errors():
            ledger.registry.ledger.ping()
    except StoreUnavailable:
        return JSONResponse({"status": "unavailable", "event_store": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "event_store": "up"})


@router.get("/api/info", summary="What this service is and how it is configured")
async def info(ledger: LedgerDep) -> dict[str, Any]:
    return {
        "name": "ModelLedger",
        "version": package_version(),
        "api_version": "v1",
        "event_store": ledger.backend,
        "group_commit": ledger.settings.group_commit,
        "workers": ledger.settings.workers,
    }
