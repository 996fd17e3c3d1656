"""The HTTP process, composed: the ledger (bootstrap), then what only an API process
holds (keys, rate limits, metrics, its follower of the projections), handed to the
routes as api.services.Services. ``create_app`` is uvicorn's factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import timedelta
from typing import TYPE_CHECKING, cast
from uuid import UUID

from anyio import to_thread
from eventsourcing.utils import get_topic
from fastapi import FastAPI

from api.app import build_app
from api.metrics import metrics_collectors
from api.observability import ApiMetrics
from api.rate_limit import RateLimiter, TokenBuckets
from api.services import ApiOptions, Operations, Services, WebhookDesk
from commands.keyring import KeyRing
from modelledger.bootstrap import Ledger, bootstrap
from modelledger.kept_secrets import session_secret
from modelledger.logs import configure_logging
from modelledger.settings import Settings, warn_removed
from processes.webhooks.queue import ensure_webhook_queue
from processes.webhooks.requests import DeliveryRequests
from projections.worker import PROJECTIONS, ensure_projections
from queries.watch import PositionsWatch
from ui.install import install as install_ui
from write_model.metric_definition import DEFINITION_EVENT_TYPES

if TYPE_CHECKING:  # imported where used: only a process given a Redis URL loads the client
    from redis.asyncio import Redis as AsyncRedis

log = logging.getLogger("modelledger.api")

CHANGES_PAGE = 500  # log events read at a time by ChangesTakenIn
WAITING_AT_MOST = 10_000  # changes ChangesTakenIn holds back for the catalogue
# Changes of how metrics are ranked: the model answers this process keeps rank with them.
DEFINITION_TOPICS = frozenset(get_topic(cls) for cls in DEFINITION_EVENT_TYPES)
WARM_CHECK_SECONDS = 0.5  # how often warming looks whether the catalogue has caught up
STOP_SECONDS = 20.0  # what a follower of the log is given to land what it has in hand


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections, so that they do not stall the event loop.

    The command cache holds many small objects; with CPython's default
    thresholds, full collections walk all of them every few thousand requests
    and stall the event loop. Freezing what start-up built and raising the
    first-generation threshold makes those pauses rare (docs/benchmarks.md).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app(settings: Settings | None = None, ledger: Ledger | None = None) -> FastAPI:
    """The app; pass a ready ``ledger`` (tests) or let the lifespan build one."""
    settings = settings or (ledger.settings if ledger else Settings())
    options = ApiOptions(
        max_body_bytes=settings.max_body_bytes,
        cors_origins=tuple(settings.cors_origins),
        access_log=settings.access_log,
        health_max_lag_seconds=settings.health_max_lag_seconds,
        graphql=settings.graphql_limits(),
    )
    app = build_app(options, lambda: serving(settings, options, ledger))
    install_ui(app, session_secret(settings))
    return app


@asynccontextmanager
async def serving(
    settings: Settings, options: ApiOptions, given: Ledger | None
) -> AsyncIterator[Services]:
    """Start what the process runs, yield its services, and stop it all again (also
    when starting fails halfway: whatever was started is stopped)."""
    owned = given is None
    if owned:  # a served process (tests bring their own ledger, and their own logging)
        configure_logging(settings.log_level, settings.log_format)
        warn_removed()
    # Commands block on the event store in threads; enough of them lets
    # concurrent commands meet in one group commit.
    to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
    async with AsyncExitStack() as stack:
        ledger = given or bootstrap(settings)
        if owned:
            stack.callback(ledger.close)
        await _start(stack, ledger, settings, owned)
        redis = None
        if settings.redis_url:  # (the client library is loaded only then)
            from adapters.redis_clients import connect_async_redis

            redis = connect_async_redis(settings.redis_url)
            stack.push_async_callback(redis.aclose)
        watch = asyncio.create_task(
            PositionsWatch(
                ledger.positions,
                ledger.read_engine,
                ledger.log_head,
                ChangesTakenIn(ledger),
            ).run()
        )
        stack.push_async_callback(_cancelled, watch)
        if owned:  # (tests ask for a warm cache when their story needs one)
            warming = asyncio.create_task(_warmed(ledger))
            stack.push_async_callback(_cancelled, warming)
        services = services_of(ledger, options, redis)
        if owned and settings.webhooks:  # (tests start their own deliverer)
            deliverer = ledger.webhook_deliverer()
            delivering = asyncio.create_task(deliverer.run())
            stack.push_async_callback(_stopped, deliverer.stopping, delivering)
            services.operations.deliverer_alive = lambda: not delivering.done()
        if settings.tune_gc:
            tune_garbage_collector()
        yield services


async def _start(stack: AsyncExitStack, ledger: Ledger, settings: Settings, owned: bool) -> None:
    """Embedded default: the projections and the provider worker run here; an API
    replica (projections off) only makes sure the tables exist."""
    if settings.projections and ledger.worker is None:
        await to_thread.run_sync(ledger.start_projections)
        if not owned:  # a given ledger keeps living: stop what was started for this app
            stack.callback(ledger.stop_projections)
    else:
        await to_thread.run_sync(ensure_projections, ledger.write_engine)
    await to_thread.run_sync(ensure_webhook_queue, ledger.write_engine)
    if owned and settings.provider_worker:
        ledger.start_provider_worker()
    already = ledger.subscriber is not None
    if ledger.follow_announcements() is not None and not (owned or already):
        stack.callback(ledger.stop_following_announcements)


class ChangesTakenIn:
    """What the API process does with the changes any process made, told by its watch
    the position it last took in: the command side forgets its copies of models changed
    since, at once; the read side reads again the models whose previous answer it keeps,
    once the catalogue has their change (until then they wait, up to WAITING_AT_MOST,
    the oldest dropped first: reads of them then miss and read them anyway)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.waiting: deque[tuple[int, UUID, int]] = deque(maxlen=WAITING_AT_MOST)

    def __call__(self, after: int) -> int:
        first, definitions = after, []
        while True:
            page = self.ledger.event_log.page(after, CHANGES_PAGE)
            changes = [(c.id, cast(UUID, c.originator_id), c.originator_version) for c in page]
            self.ledger.registry.forget_older((model, version) for _, model, version in changes)
            self.waiting.extend(changes)
            definitions += [c.id for c in page if c.topic in DEFINITION_TOPICS]
            if page:
                after = page[-1].id
            if len(page) < CHANGES_PAGE:
                break
        self.ledger.models.follow_definitions(first, after, definitions)
        catalogue, ready = self.ledger.positions.furthest_of("catalogue"), []
        while self.waiting and self.waiting[0][0] <= catalogue:
            _, model, version = self.waiting.popleft()
            ready.append((model, version))
        self.ledger.models.refresh(ready)
        return after


async def _warmed(ledger: Ledger) -> None:
    """The answer cache filled with the most recently changed models, in the background,
    once the catalogue holds the log as it stood at start: a restart serves at once,
    and its first reads of those models cost no more than a hit."""
    started = time.monotonic()
    try:
        head = await to_thread.run_sync(ledger.log_head)
        while head and ledger.positions.furthest_of("catalogue") < head:
            await asyncio.sleep(WARM_CHECK_SECONDS)
        kept = await to_thread.run_sync(ledger.models.warm)
    except Exception as error:  # an outage, a rebuild: reads fill the cache instead
        log.warning("answer cache not warmed: %s", error)
        return
    log.info(
        "answer cache warmed with %d models (%.1f MB) in %.1f s",
        kept,
        ledger.answers.size_bytes / 1e6,
        time.monotonic() - started,
    )


async def _stopped(stopping: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Let the task finish what it has in hand, then cancel it if it takes too long."""
    stopping.set()
    with suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), timeout=STOP_SECONDS)
    await _cancelled(task)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def services_of(ledger: Ledger, options: ApiOptions, redis: AsyncRedis | None) -> Services:
    settings = ledger.settings
    metrics = metrics_collectors(ledger.event_log, ledger.read_engine, ledger.tables)
    return Services(
        registry=ledger.registry,
        event_log=ledger.event_log,
        tables=ledger.tables,
        catalogue=ledger.catalogue,
        models=ledger.models,
        model_projects=ledger.model_projects,
        providers=ledger.providers,
        rate_limits=rate_limiter(settings, redis),
        keyring=keyring_for(ledger),
        operations=operations_of(ledger, redis),
        options=options,
        metrics=metrics,
        api_metrics=ApiMetrics.register(metrics, ledger.registry, ledger.answers),
        webhooks=WebhookDesk(
            sealer=ledger.sealer(),
            queue=DeliveryRequests(ledger.write_engine),
            secret_overlap=timedelta(seconds=settings.webhooks_secret_overlap_seconds),
            timeout_seconds=settings.webhooks_timeout_seconds,
        ),
    )


def operations_of(ledger: Ledger, redis: AsyncRedis | None) -> Operations:
    settings = ledger.settings

    def projection_errors() -> dict[str, str]:
        return ledger.worker.errors() if ledger.worker is not None else {}

    def provider_worker_alive() -> bool:
        return ledger.provider_worker is not None and ledger.provider_worker.alive

    return Operations(
        backend=ledger.backend,
        group_commit=settings.group_commit,
        workers=settings.workers,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        read_engine=ledger.read_engine,
        write_engine=ledger.write_engine,
        ping_store=ledger.registry.ping,
        projection_versions={p.name: p.version for p in PROJECTIONS},
        projection_errors=projection_errors,
        provider_worker_alive=provider_worker_alive,
        redis=redis,
    )


def rate_limiter(settings: Settings, redis: AsyncRedis | None) -> RateLimiter:
    local = TokenBuckets(settings.rate_limit, settings.rate_limit_burst)
    if redis is None:
        return local
    from adapters.redis_limits import RedisBuckets

    return RedisBuckets(redis, local)


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
