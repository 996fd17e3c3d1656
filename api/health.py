"""Health and service information."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.auth import allow
from api.errors import ERRORS
from api.operations_schemas import HealthResponse, HealthUnavailable, ServiceInfo
from api.parameters import only_known_parameters
from api.queries import MinPosition
from api.services import ServicesDep
from commands.ports import StoreUnavailable
from queries.errors import ReadStoreUnavailable
from queries.ports import LogUnavailable
from queries.projections import SERVING, event_time_in, lagging, projection_report
from queries.reading import within_the_log
from write_model.access import Action

router = APIRouter(tags=["operations"])


def package_version() -> str:
    try:
        return version("modelledger")
    except PackageNotFoundError:
        return "0+unknown"


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Liveness, event store reachability, projections' status and lag",
    responses={503: {"model": HealthUnavailable, "description": "the event store is unreachable"}},
)
def health(services: ServicesDep) -> JSONResponse:
    """200 while the event store answers (load balancers read it): ``degraded`` while a
    projection stopped, lags more than MODELLEDGER_HEALTH_MAX_LAG_SECONDS, or has no
    live holder; 503 only for an unreachable event store."""
    try:
        # One try, answered within the connect timeout (the head's read retries for
        # seconds, which a load balancer's probe should not wait out)
        services.operations.ping_store()
        head = services.event_log.head()  # the lag's reference
    except (StoreUnavailable, LogUnavailable):
        return JSONResponse({"status": "unavailable", "event_store": "down"}, status_code=503)
    projections, behind = projection_health(services, head)
    # A stopped or stalled projection leaves its tables stale: still serving, but degraded.
    degraded = bool(behind) or any(status not in SERVING for status in projections.values())
    return JSONResponse(
        {
            "status": "degraded" if degraded else "ok",
            "event_store": "up",
            "projections": projections,
            "lagging": behind,
        }
    )


def projection_health(
    services: ServicesDep, head: int
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Each projection's status, and those lagging (behind or held by no live process)."""
    operations = services.operations
    try:
        report = projection_report(
            operations.read_engine,
            head,
            operations.projection_versions,
            event_time_in(services.event_log),
        )
    except ReadStoreUnavailable:
        return {"read_store": "down"}, {}
    except LogUnavailable:  # the log went away between the two reads
        return {"event_store": "down"}, {}
    statuses = {entry["name"]: entry["status"] for entry in report}
    for name, error in operations.projection_errors().items():  # not yet in the rows
        statuses[name] = f"waiting: {error}"
    return statuses, lagging(report, services.options.health_max_lag_seconds)


@router.get(
    "/api/info",
    response_model=ServiceInfo,
    summary="What this service is and how it is configured",
    dependencies=[allow(Action.READ), Depends(only_known_parameters)],
    responses={422: ERRORS[422]},  # (a parameter it does not take, or a bad min_position)
)
def info(services: ServicesDep, min_position: MinPosition = None) -> JSONResponse:
    """(`min_position` is taken as on every read under /api: checked, never waited for.)"""
    if min_position is not None:
        within_the_log(min_position, services.event_log.head())
    operations = services.operations
    return JSONResponse(
        {
            "name": "ModelLedger",
            "version": package_version(),
            "api_version": "v1",
            "event_store": operations.backend,
            "group_commit": operations.group_commit,
            "workers": operations.workers,
        }
    )
