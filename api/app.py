"""The FastAPI app factory. Nothing is built at import: the lifespan composes the ledger."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api import (
    admin,
    admin_keys,
    commands,
    deployments,
    docs,
    errors,
    events,
    health,
    health_detailed,
    hub_import,
    metrics,
    openapi,
    queries,
)
from api.headers import SecurityHeaders
from api.health import package_version
from api.limits import RequestLimits
from api.observability import ApiMetrics, RequestObserver
from api.rate_limit import RateLimiter, RedisBuckets, TokenBuckets
from commands.keyring import KeyRing
from modelledger.bootstrap import Ledger, bootstrap
from modelledger.logs import configure_logging
from modelledger.settings import Settings
from projections.worker import ensure_projections
from queries.cache import REFRESH_SECONDS, refresh_positions

log = logging.getLogger("modelledger.api")
# With announcements, the refresh only catches what a lost message missed, and keeps the
# fast path's view younger than FRESH_SECONDS when nothing is committed.
ANNOUNCED_REFRESH_SECONDS = 0.2

# What a browser on an allowed origin may send and read (CORS is off by default).
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "X-Correlation-Id",
    "Last-Event-ID",
)
CORS_RESPONSE_HEADERS = ("ETag", "Location", "Retry-After", "X-Position")

DESCRIPTION = """
ModelLedger is an event-sourced registry for AI models: every change is an event in an
immutable, replayable log. Commands answer `{id, version, position}`; send
`If-Match: "<version>"` for optimistic concurrency and `Idempotency-Key` to retry safely.
Send bodies as `application/json`. Errors are RFC 9457 `application/problem+json`; their
`type` names the kind of problem (the Problem schema lists them) and never changes.
"""


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections: measured p99 120 ms -> 37 ms at 64 clients.

    The command cache holds many small objects; with CPython's default
    thresholds, full collections walk all of them every few thousand requests
    and stall the event loop. Freezing what start-up built and raising the
    first-generation threshold makes those pauses rare (docs/benchmarks.md).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def follow_positions(ledger: Ledger) -> None:
    """Keep the answer cache's view of each projection's position current, so a
    repeated query is answered on the event loop (never all at once from threads
    when the view would go stale). While the workers' announcements arrive through
    Redis, they keep it current and the database is asked far less often."""
    subscriber = ledger.follow_announcements()
    while True:
        try:
            await to_thread.run_sync(refresh_positions, ledger.answers, ledger.read_engine)
        except Exception as error:  # a database outage: queries say so themselves
            log.debug("position refresh failed: %s", error)
        announced = subscriber is not None and subscriber.connected.is_set()
        await asyncio.sleep(ANNOUNCED_REFRESH_SECONDS if announced else REFRESH_SECONDS)


async def follow_model_answers(ledger: Ledger) -> None:
    """Keep the models' answers this process holds current (queries.model_answers)."""
    if ledger.model_answers.capacity == 0:
        return
    while True:
        # Only once the catalogue was seen to move (follow_positions): idle, no query.
        seen = ledger.answers.seen("catalogue")
        if seen is not None and ledger.model_answers.behind(seen.generation, seen.position):
            try:
                await to_thread.run_sync(ledger.model_answers.follow, ledger.read_engine)
            except Exception as error:  # a database outage: reads go to the tables
                log.debug("model answers not followed: %s", error)
        await asyncio.sleep(REFRESH_SECONDS)


async def follow_other_writers(ledger: Ledger) -> None:
    """Drop cached models other processes changed (ModelRegistry.forget_changed)."""
    after: int | None = None
    while True:
        # Only once a projection was seen past what was read (follow_positions): the
        # log has grown. Idle, no query (each of these loops asked the database 50
        # times a second per process: a quarter of a core for nothing).
        seen = max((s.position for s in ledger.answers.positions.values()), default=0)
        try:
            if after is None:
                after = await to_thread.run_sync(ledger.log_head)
            elif seen > after:
                after = await to_thread.run_sync(ledger.registry.forget_changed, after)
        except Exception as error:  # the store is down: commands say so themselves
            log.debug("changes by other processes not followed: %s", error)
        await asyncio.sleep(REFRESH_SECONDS)


def connect_redis(settings: Settings) -> Redis | None:
    if settings.redis_url is None:
        return None
    # Short timeouts: a Redis that hangs must not hold requests up (they fall back).
    # One immediate retry: a pooled connection Redis dropped (a restart) is replaced.
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    local = TokenBuckets(settings.rate_limit, settings.rate_limit_burst)
    return local if redis is None else RedisBuckets(redis, local)


def keyring_for(ledger: Ledger) -> KeyRing | None:
    settings = ledger.settings
    if not settings.auth:
        log.warning(
            "AUTHENTICATION IS OFF (MODELLEDGER_AUTH=off): anyone who can reach this "
            "service is an admin. Use this only for local experiments."
        )
        return None
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    return KeyRing(ledger.registry, ttl=settings.key_cache_seconds, admin_key=admin_key)


def create_app(settings: Settings | None = None, ledger: Ledger | None = None) -> FastAPI:
    """Build the app; pass a ready ``ledger`` (tests) or let the lifespan build one."""
    settings = settings or (ledger.settings if ledger else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ledger is None
        if owned:  # a served process (tests bring their own ledger, and their own logging)
            configure_logging(settings.log_level, settings.log_format)
        # Commands block on the event store in threads; enough of them lets
        # concurrent commands meet in one group commit.
        to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        app.state.ledger = running = ledger or bootstrap(settings)
        # Embedded default: the projections run here; an API replica (projections
        # off) only makes sure their tables exist.
        started = settings.projections and running.worker is None
        if started:
            await to_thread.run_sync(running.start_projections)
        else:
            await to_thread.run_sync(ensure_projections, running.write_engine)
        if owned and settings.provider_worker:  # embedded default: provider jobs run here
            running.start_provider_worker()
        app.state.metrics = metrics.metrics_registry(running)
        app.state.api_metrics = ApiMetrics.register(app.state.metrics, running)
        app.state.keyring = keyring_for(running)
        app.state.open_streams = Counter()
        app.state.redis = redis = connect_redis(settings)
        app.state.rate_limits = rate_limiter(settings, redis)
        refresher = asyncio.create_task(follow_positions(running))
        follower = asyncio.create_task(follow_model_answers(running))
        writers = asyncio.create_task(follow_other_writers(running))
        if settings.tune_gc:
            tune_garbage_collector()
        try:
            yield
        finally:
            refresher.cancel()
            follower.cancel()
            writers.cancel()
            if redis is not None:
                await redis.aclose()
            if owned:
                running.close()
            elif started and running.worker is not None:
                running.worker.stop()
                running.worker = None

    app = FastAPI(
        title="ModelLedger",
        version=package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # api.docs serves both pages from this package, not a CDN
        redoc_url=None,
    )
    errors.install(app)
    openapi.install(app)
    docs.install(app)
    app.include_router(hub_import.router)  # before commands: /import/... is no model id
    app.include_router(commands.router)
    app.include_router(queries.router)
    app.include_router(events.router)
    app.include_router(deployments.router)
    app.include_router(health.router)
    app.include_router(health_detailed.router)
    app.include_router(admin.router)
    app.include_router(admin_keys.router)
    app.include_router(metrics.router)
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_RESPONSE_HEADERS),
            max_age=600,
        )
    app.add_middleware(RequestObserver, access_log=settings.access_log)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    return app
