"""The event feed: every change across the registry, in log order, as a page or live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import Credentials, PrincipalDep, allow, key_text
from api.errors import ERRORS, RateLimited
from api.feed_schemas import (
    EventPage,
    KeyEvent,
    MetricDefinitionEvent,
    ModelEvent,
    SessionEvent,
)
from api.queries import sent
from api.services import (
    MAX_STREAMS_PER_KEY,
    STREAM_POLL_SECONDS,
    Services,
    ServicesDep,
    get_services,
)
from queries.events import FeedView, list_events
from queries.messages import ListEvents
from queries.reading import within_the_log
from write_model.access import Action, NotAuthenticated, Principal

router = APIRouter(
    prefix="/api/v1/events", tags=["audit"], dependencies=[allow(Action.READ)], responses=ERRORS
)

SCHEMAS = "#/components/schemas/"
# What each server-sent event holds (FastAPI documents the fields of any event; the
# stream sends ServerSentEvents, whose data it does not read): an item of the feed.
STREAM_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data", "event", "id"],
    "properties": {
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "anyOf": [
                    {"$ref": SCHEMAS + kind.__name__}
                    for kind in (ModelEvent, KeyEvent, MetricDefinitionEvent, SessionEvent)
                ]
            },
            "description": "the event, as an item of GET /api/v1/events",
        },
        "event": {"type": "string", "description": "the event's type"},
        "id": {"type": "string", "description": "the event's log position (Last-Event-ID)"},
    },
}


def feed_view(services: ServicesDep, caller: Principal) -> FeedView:
    return FeedView(caller.visible_projects, caller.may(Action.ADMINISTER), services.model_projects)


def feed_query(services: ServicesDep, query: Annotated[ListEvents, Query()]) -> ListEvents:
    """The feed's query, its ``min_position`` checked before any answer starts (the log
    holds every acknowledged change: only a position past its end is refused)."""
    if query.min_position is not None:
        within_the_log(query.min_position, services.event_log.head())
    return query


FeedQuery = Annotated[ListEvents, Depends(feed_query)]


@router.get("", response_model=EventPage, summary="The global, ordered event feed")
def feed(services: ServicesDep, caller: PrincipalDep, query: FeedQuery) -> Response:
    head = services.event_log.head()  # (read first: the page reaches at least this far)
    page = list_events(services.event_log, query, feed_view(services, caller))
    answer = sent(page.answer())
    answer.headers["X-Log-Head"] = str(head)  # where "from now" begins, for a follower
    return answer


async def stream_slot(request: Request, caller: PrincipalDep) -> Principal:
    """A stream holds a connection for as long as it likes: a few per key at once."""
    streams = get_services(request).open_streams
    if streams[caller.name] >= MAX_STREAMS_PER_KEY:
        raise RateLimited(
            f"this key has {MAX_STREAMS_PER_KEY} streams open already; close one", retry_after=5
        )
    return caller


async def still_valid(services: Services, caller: Principal, text: str) -> bool:
    """Is the stream's key still good? Checked as the stream goes on, so a key revoked
    while it listens stops it (within MODELLEDGER_KEY_CACHE_SECONDS, from memory between)."""
    keyring = services.keyring
    if keyring is None or caller.key_id is None:  # no auth, or the settings' admin key
        return True
    try:
        if keyring.cached(text) is None:
            await to_thread.run_sync(keyring.authenticate, text)
    except NotAuthenticated:
        return False
    return True


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="Server-sent events: the feed from a position, then live",
    openapi_extra={
        "responses": {"200": {"content": {"text/event-stream": {"itemSchema": STREAM_EVENT}}}}
    },
)
async def stream(
    services: ServicesDep,
    caller: Annotated[Principal, Depends(stream_slot)],
    credentials: Credentials,
    query: FeedQuery,
    last_event_id: Annotated[
        str | None,
        Header(
            pattern=r"^\d{1,18}$",
            description="sent by a reconnecting EventSource: go on after this position",
        ),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    key = key_text(credentials) if services.keyring is not None else ""
    after = max(query.after, int(last_event_id or 0))
    view = feed_view(services, caller)
    streams = services.open_streams
    streams[caller.name] += 1
    try:
        while True:
            asked = query.model_copy(update={"after": after})
            page = await to_thread.run_sync(list_events, services.event_log, asked, view)
            # Checked after the read: what a revoked key is sent was stored before it was.
            if not await still_valid(services, caller, key):
                return
            for item, text in page.texts():
                yield ServerSentEvent(id=str(item["position"]), event=item["type"], raw_data=text)
            after = page.next_after
            if page.at_head:
                await asyncio.sleep(STREAM_POLL_SECONDS)
    finally:
        streams[caller.name] -= 1
