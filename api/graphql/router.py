"""``/graphql``: POST a query (with an API key, as any REST read), or open a WebSocket
(graphql-transport-ws) for ``modelEvents``; GET in a browser is GraphiQL (api/graphiql.py).

The same keys, roles and project scopes as REST: an HTTP request is authenticated before
the operation runs (401/403/429 as problem+json, as REST answers them); a WebSocket
in its ``connection_init``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import strawberry
from cross_web import HTTPException
from fastapi import FastAPI
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth import BEARER_SCHEME, principal
from api.errors import BAD_REQUEST, KIND_BY_STATUS, problem
from api.graphql.answers import Positions, ProblemCodes
from api.graphql.context import GraphContext
from api.graphql.limits import GraphqlLimits, limiting_extensions
from api.graphql.schema import Query
from api.graphql.subscription import Subscription, authenticate
from api.graphql.types import TIME, Time
from api.services import MAX_STREAMS_PER_KEY, get_services
from write_model.access import Action, NotPermitted

PATH = "/graphql"


class LedgerSchema(strawberry.Schema):
    """Queries over HTTP, subscriptions over the WebSocket, and nothing else: a query on
    the socket would run as the key stood at connection_init, spending no rate-limit
    tokens, after the key was revoked."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        allowed = kwargs.get("allowed_operation_types") or {OperationType.QUERY}
        kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().execute(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        allowed = kwargs.get("allowed_operation_types")
        # (None: the WebSocket's handler; else an HTTP streaming transport)
        if allowed is None:
            kwargs["allowed_operation_types"] = {OperationType.SUBSCRIPTION}
        else:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().stream(*args, **kwargs)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Refusals are the caller's and need no log line; api.graphql.answers logs bugs."""


def build_schema(limits: GraphqlLimits) -> strawberry.Schema:
    return LedgerSchema(
        query=Query,
        subscription=Subscription,
        extensions=[*limiting_extensions(limits), ProblemCodes, Positions],
        config=StrawberryConfig(
            disable_field_suggestions=not limits.introspection, scalar_map={Time: TIME}
        ),
    )


async def graph_context(connection: HTTPConnection) -> GraphContext:
    """An HTTP request's caller, from its Bearer key; a WebSocket's comes later."""
    services = get_services(connection)  # type: ignore[arg-type]
    client = connection.client.host if connection.client else "unknown"
    if connection.scope["type"] == "websocket":
        return GraphContext(services, None, client=client)
    credentials = await BEARER_SCHEME(connection)
    caller = await principal(connection, credentials)  # type: ignore[arg-type]
    if not caller.may(Action.READ):
        raise NotPermitted(f"the {caller.role} role may not read", field="Authorization")
    return GraphContext(services, caller, client=client)


class LedgerGraphQL(GraphQLRouter[GraphContext, None]):
    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's refusals of a request (no query, a batch, a body that is not
        JSON) as problem+json, as REST refuses a bad request."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            kind = KIND_BY_STATUS.get(refused.status_code, BAD_REQUEST)
            return problem(
                kind, refused.reason, errors=[{"field": "body", "message": refused.reason}]
            )

    async def on_ws_connect(self, context: GraphContext) -> UnsetType | dict[str, object] | None:
        await authenticate(context, context.client)
        unset: UnsetType = UNSET
        return unset


def install(app: FastAPI, limits: GraphqlLimits) -> None:
    router: LedgerGraphQL = LedgerGraphQL(
        build_schema(limits),
        path=PATH,
        graphql_ide=None,  # api.graphiql serves a page whose scripts are ours, not a CDN's
        allow_queries_via_get=False,
        context_getter=graph_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=MAX_STREAMS_PER_KEY,
        include_in_schema=False,
    )
    app.include_router(router)
