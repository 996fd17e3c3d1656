"""The FastAPI app: routes, middleware and the error table. Nothing is built at import;
the composition root (modelledger.web) hands in how to build the services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import (
    admin,
    admin_keys,
    admin_webhooks,
    commands,
    deployments,
    docs,
    errors,
    events,
    graphiql,
    health,
    health_detailed,
    hub_import,
    metric_definitions,
    metrics,
    openapi,
    queries,
)
from api.graphql import router as graphql
from api.headers import SecurityHeaders
from api.health import package_version
from api.limits import RequestLimits
from api.observability import RequestObserver
from api.parameters import only_known_parameters
from api.services import ApiOptions, Services

# What a browser on an allowed origin may send and read (CORS is off by default).
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "X-Correlation-Id",
    "Last-Event-ID",
)
CORS_RESPONSE_HEADERS = ("ETag", "Location", "Retry-After", "X-Log-Head", "X-Position")

DESCRIPTION = """
ModelLedger is an event-sourced registry for AI models: every change is an event in an
immutable, replayable log. Commands answer `{id, version, position}`; send
`If-Match: "<version>"` for optimistic concurrency and `Idempotency-Key` to retry safely.
Send bodies as `application/json`. Errors are RFC 9457 `application/problem+json`; their
`type` names the kind of problem (the Problem schema lists them) and never changes.
"""


def build_app(
    options: ApiOptions, compose: Callable[[], AbstractAsyncContextManager[Services]]
) -> FastAPI:
    """The routes, middleware and error table; ``compose`` (modelledger.web) builds the
    services when the app starts and stops them when it ends."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with compose() as services:
            app.state.services = services
            yield

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
    known = [Depends(only_known_parameters)]  # on every /api/v1 route
    app.include_router(hub_import.router, dependencies=known)  # before commands: /import/...
    app.include_router(commands.router, dependencies=known)
    app.include_router(queries.router, dependencies=known)
    app.include_router(events.router, dependencies=known)
    app.include_router(deployments.router, dependencies=known)
    app.include_router(health.router)
    app.include_router(health_detailed.router)
    app.include_router(admin.router, dependencies=known)
    app.include_router(admin_keys.router, dependencies=known)
    app.include_router(admin_webhooks.router, dependencies=known)
    app.include_router(metric_definitions.router, dependencies=known)
    app.include_router(metrics.router)
    graphiql.install(app)
    graphql.install(app, options.graphql)
    app.add_middleware(RequestLimits, max_body_bytes=options.max_body_bytes)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_RESPONSE_HEADERS),
            max_age=600,
        )
    app.add_middleware(RequestObserver, access_log=options.access_log)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    return app
