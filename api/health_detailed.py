"""GET /health/detailed (admins): each dependency's status and round-trip time, and
each projection's lag. Never 5xx for a dependency that is down: it says so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.auth import allow
from api.errors import ERRORS
from api.operations_schemas import DetailedHealthResponse
from api.services import Services, ServicesDep
from commands.ports import StoreUnavailable
from queries.errors import QueryError, ReadStoreUnavailable
from queries.operations import jobs_open, standing
from queries.ports import LogUnavailable
from queries.projections import SERVING, event_time_in, lagging, projection_report
from queries.reading import read_errors
from queries.webhooks import webhook_standing
from write_model.access import Action

if TYPE_CHECKING:  # imported where used: only a process given a Redis URL loads the client
    from redis.asyncio import Redis

router = APIRouter(tags=["operations"], dependencies=[allow(Action.ADMINISTER)], responses=ERRORS)


@router.get(
    "/health/detailed",
    response_model=DetailedHealthResponse,
    summary="Each dependency's status and latency",
)
async def health_detailed(services: ServicesDep) -> JSONResponse:
    operations = services.operations
    event_store = await _timed_in_thread(lambda: {"head": services.event_log.head()})
    read_store = await _timed_in_thread(lambda: _ping_read_store(services))
    redis: Redis | None = operations.redis
    cache = {"status": "not configured"} if redis is None else await _ping(redis)
    head = event_store.get("head")
    projections, lags = await to_thread.run_sync(_projections, services, head)
    relays = await to_thread.run_sync(_relays, services, head)
    down = event_store["status"] != "up" or read_store["status"] != "up"
    # The same rule as /health: a projection stopped, behind, or held by no live process.
    behind = bool(lags) or any(p.get("status") not in SERVING for p in projections.values())
    degraded = behind or cache["status"] == "down"
    return JSONResponse(
        {
            "status": "unavailable" if down else "degraded" if degraded else "ok",
            "event_store": {"backend": operations.backend, **event_store},
            "read_store": read_store,
            "redis": cache,
            "kafka": await _kafka(operations.kafka_bootstrap_servers, relays),
            "projections": projections,
            "lagging": lags,
            "providers": await to_thread.run_sync(_providers, services, head),
            "webhooks": await to_thread.run_sync(_webhooks, services, head),
        }
    )


def _providers(services: Services, head: int | None) -> dict[str, Any]:
    """What this process can drive, the worker's lag, and the jobs providers work on."""
    engine = services.operations.read_engine
    try:
        jobs = jobs_open(engine)
        taken_in = standing(engine).intake or 0
    except (ReadStoreUnavailable, SQLAlchemyError) as error:
        return {"status": "down", "error": type(error).__name__}
    now = time.time()
    return {
        "worker_lag": max(0, (head or 0) - taken_in),
        "trainers": sorted(services.providers.trainers),
        "deployers": sorted(services.providers.deployers),
        "sources": sorted(services.providers.sources),
        "worker_in_this_process": services.operations.provider_worker_alive(),
        "open_jobs": len(jobs),
        "oldest_open_job_seconds": round(now - min(j["opened_at"] for j in jobs), 1)
        if jobs
        else None,
        "retrying": sum(1 for j in jobs if j["last_error"]),
    }


def _webhooks(services: Services, head: int | None) -> dict[str, Any]:
    """The deliverer's lag, the subscriptions disabled, the deliveries waiting."""
    try:
        found = webhook_standing(services.tables, head or 0)
    except (ReadStoreUnavailable, QueryError, SQLAlchemyError) as error:
        return {"status": "down", "error": type(error).__name__}
    return {
        **found,
        "deliverer_in_this_process": services.operations.deliverer_alive(),
        "oldest_pending_seconds": round(found["oldest_pending_seconds"], 1),
    }


def _ping_read_store(services: Services) -> dict[str, Any]:
    with read_errors(), services.operations.read_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {}


async def _ping(redis: Redis) -> dict[str, Any]:
    from redis.exceptions import RedisError

    async def ping() -> dict[str, Any]:
        await redis.ping()
        return {}

    return await _timed(ping, RedisError)


async def _timed(
    probe: Callable[[], Awaitable[dict[str, Any]]], *errors: type[Exception]
) -> dict[str, Any]:
    started = time.perf_counter()
    down: tuple[type[Exception], ...] = (*errors, OSError, TimeoutError, ValueError)
    try:
        found = await probe()
    except down as error:
        return {"status": "down", "error": type(error).__name__}
    return {"status": "up", "latency_ms": _ms_since(started), **found}


async def _timed_in_thread(probe: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        found = await to_thread.run_sync(probe)
    except (StoreUnavailable, LogUnavailable, ReadStoreUnavailable) as error:
        return {"status": "down", "error": error.detail}
    return {"status": "up", "latency_ms": _ms_since(started), **found}


def _projections(
    services: Services, head: int | None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each projection's standing, and those lagging (as /health names them)."""
    operations = services.operations
    try:
        report = projection_report(
            operations.read_engine,
            head or 0,
            operations.projection_versions,
            event_time_in(services.event_log),
        )
    except (ReadStoreUnavailable, LogUnavailable):
        return {}, {}
    keep = ("status", "position", "lag", "lag_seconds", "holder_alive", "error")
    standing = {entry["name"]: {k: entry.get(k) for k in keep} for entry in report}
    return standing, lagging(report, services.options.health_max_lag_seconds)


async def _kafka(servers: str | None, relays: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Can the first broker be reached (a TCP connection), and how far behind is each relay."""
    if servers is None:
        return {"status": "not configured"}
    host, _, port = servers.split(",")[0].strip().rpartition(":")
    found = await _timed(lambda: _connect(host or "localhost", int(port or 9092)))
    return {**found, "relays": relays}


async def _connect(host: str, port: int) -> dict[str, Any]:
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2)
    writer.close()
    await writer.wait_closed()
    return {}


def _relays(services: Services, head: int | None) -> dict[str, dict[str, int]]:
    """How far each relay is behind the log (the relay process itself talks to Kafka)."""
    try:
        relays = standing(services.operations.read_engine).relays
    except ReadStoreUnavailable:
        return {}
    return {
        name: {"position": relayed, "lag": max(0, (head or 0) - relayed)}
        for name, relayed in relays.items()
    }


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
