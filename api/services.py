"""What the routes are handed, typed: the composition root (modelledger.bootstrap) builds
one ``Services`` per process and the lifespan puts it where ``services()`` finds it.
Routes ask for the part they use through the Annotated aliases below."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from api.graphql.limits import GraphqlLimits
from api.observability import ApiMetrics
from api.rate_limit import RateLimiter
from commands.keyring import KeyRing
from commands.ports import DeliveryQueue, Providers, Sealer
from commands.registry import ModelRegistry
from queries.catalogue_reader import CatalogueReader
from queries.model_reader import ModelReader
from queries.ports import EventLog
from queries.tables import ReadTables
from queries.visibility import ModelProjects


@dataclass(frozen=True)
class ApiOptions:
    """The settings the HTTP layer reads (bootstrap takes them from Settings)."""

    max_body_bytes: int = 1_048_576
    cors_origins: tuple[str, ...] = ()
    access_log: bool = False
    health_max_lag_seconds: float = 60.0
    graphql: GraphqlLimits = field(default_factory=GraphqlLimits)


@dataclass
class Operations:
    """What /health, /api/info, /metrics and the admin routes ask of this process."""

    backend: str  # the event store, described without credentials
    group_commit: bool
    workers: int
    kafka_bootstrap_servers: str | None
    read_engine: Engine
    write_engine: Engine
    ping_store: Callable[[], None]  # one try, within the connect timeout
    projection_versions: dict[str, int]
    projection_errors: Callable[[], dict[str, str]]  # in-process trouble not yet in the rows
    provider_worker_alive: Callable[[], bool]
    deliverer_alive: Callable[[], bool] = lambda: False
    redis: Any = None  # redis.asyncio.Redis, when configured (its health is reported)


@dataclass(frozen=True)
class WebhookDesk:
    """What the webhooks admin routes use: the secrets' sealer, the deliverer's queue, how
    long a rotated-out secret signs, and how long a delivery attempt may take."""

    sealer: Sealer
    queue: DeliveryQueue
    secret_overlap: timedelta
    timeout_seconds: float


# Streams of the feed (the API's, the web UI's): each holds a connection as long as it
# likes, so a key may have a few at once; at the log's head they look this often.
MAX_STREAMS_PER_KEY = 8
STREAM_POLL_SECONDS = 0.25


@dataclass
class Services:
    registry: ModelRegistry
    event_log: EventLog
    tables: ReadTables
    catalogue: CatalogueReader
    models: ModelReader
    model_projects: ModelProjects
    providers: Providers
    rate_limits: RateLimiter
    keyring: KeyRing | None
    operations: Operations
    options: ApiOptions
    metrics: CollectorRegistry
    api_metrics: ApiMetrics
    webhooks: WebhookDesk | None = None
    open_streams: Counter[str] = field(default_factory=Counter)


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


async def _services(request: Request) -> Services:  # async: no thread hop per request
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services)]
