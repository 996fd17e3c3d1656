"""``modelEvents``: the log as it grows, over graphql-transport-ws, as the SSE feed streams
it (the same reader, the same view of what the key may see), resumable from a position.

A browser cannot set headers on a WebSocket, so the key comes in ``connection_init``'s
payload (``{"Authorization": "Bearer <key>"}``): ``authenticate`` checks it there, and the
stream checks it again as it goes, ending once the key is revoked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types import Info

from api.errors import RateLimited, kind_of
from api.events import feed_view, still_valid
from api.graphql.connections import events_page
from api.graphql.context import GraphContext, message
from api.graphql.types import Event
from api.rate_limit import enforce
from api.services import MAX_STREAMS_PER_KEY, STREAM_POLL_SECONDS
from queries.messages import ListEvents
from write_model.access import ANONYMOUS_ADMIN, AccessError, Action, NotAuthenticated, NotPermitted

BEARER = "bearer "


def key_of(params: Any) -> str:
    """The key in connection_init's payload (``Authorization: Bearer <key>``)."""
    value = (
        params.get("Authorization", params.get("authorization"))
        if isinstance(params, dict)
        else None
    )
    if not isinstance(value, str) or not value.lower().startswith(BEARER):
        raise NotAuthenticated(
            'send the key in connection_init: {"Authorization": "Bearer <key>"}',
            field="Authorization",
        )
    return value[len(BEARER) :].strip()


async def authenticate(context: GraphContext, client: str) -> None:
    """The WebSocket's caller, from connection_init (refused: the socket closes 4403)."""
    services = context.services
    if services.keyring is None:  # MODELLEDGER_AUTH=off
        context.caller = ANONYMOUS_ADMIN
        return
    try:
        text = key_of(context.connection_params)
        caller = services.keyring.cached(text)
        if caller is None:
            await enforce(services.rate_limits, f"client:{client}", "this address")
            caller = await asyncio.to_thread(services.keyring.authenticate, text)
        if not caller.may(Action.READ):
            raise NotPermitted(f"the {caller.role} role may not read", field="Authorization")
    except (AccessError, RateLimited) as refused:
        raise ConnectionRejectionError(
            {"message": str(refused), "code": kind_of(refused).type}
        ) from None
    context.caller = caller
    context.key = text


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="the log's events after a position, then live, in order; resume with the "
        "last position received as after. Ends when the key is revoked."
    )
    async def model_events(
        self,
        info: Info[GraphContext, Any],
        after: int = 0,
        model_id: strawberry.ID | None = None,
        types: list[str] | None = None,
    ) -> AsyncGenerator[Event, None]:
        context = info.context
        query = message(
            ListEvents,
            after=after,
            model_id=model_id,
            type=types,
        )
        services, caller = context.services, context.caller
        assert caller is not None
        key = context.key
        # Each subscription is a request of the key: it spends a token, and a key revoked
        # since connection_init starts nothing.
        await enforce(services.rate_limits, f"key:{caller.key_id or caller.name}", "this key")
        if not await still_valid(services, caller, key):
            raise NotAuthenticated("the API key is not known", field="Authorization")
        streams = services.open_streams
        if streams[caller.name] >= MAX_STREAMS_PER_KEY:
            raise RateLimited(
                f"this key has {MAX_STREAMS_PER_KEY} streams open already; close one",
                retry_after=5,
            )
        view = feed_view(services, caller)
        streams[caller.name] += 1
        try:
            while True:
                page = await events_page(context, query, view)
                # Checked after the read: what a revoked key is sent was stored before it was.
                if not await still_valid(services, caller, key):
                    return
                for item in page.items:
                    yield Event.of(item)
                query = query.model_copy(update={"after": page.next_after})
                if page.at_head:
                    await asyncio.sleep(STREAM_POLL_SECONDS)
        finally:
            streams[caller.name] -= 1
