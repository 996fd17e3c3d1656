"""The event feed: every change across the registry, in log order, as a page or live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import PrincipalDep, allow
from api.deps import LedgerDep
from api.errors import ERRORS
from api.queries import answer
from modelledger.bootstrap import Ledger
from queries.events import FeedView, list_events
from queries.messages import ListEvents
from read_model.encoding import json_text
from write_model.access import Action, Principal

router = APIRouter(prefix="/api/v1/events", tags=["audit"], dependencies=[allow(Action.READ)])

STREAM_POLL_SECONDS = 0.25  # at the head, look for new events this often


def feed_view(ledger: Ledger, caller: Principal) -> FeedView:
    return FeedView(caller.visible_projects, caller.may(Action.ADMINISTER), ledger.model_projects)


@router.get("", responses=ERRORS, summary="The global, ordered event feed")
def feed(
    ledger: LedgerDep, caller: PrincipalDep, query: Annotated[ListEvents, Query()]
) -> Response:
    page = list_events(ledger.registry, query, feed_view(ledger, caller))
    return answer(page.body(), page.next_after)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses=ERRORS,
    summary="Server-sent events: the feed from a position, then live",
)
async def stream(
    ledger: LedgerDep,
    caller: PrincipalDep,
    query: Annotated[ListEvents, Query()],
    last_event_id: Annotated[
        str | None,
        Header(
            pattern=r"^\d{1,18}$",
            description="sent by a reconnecting EventSource: go on after this position",
        ),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    after = max(query.after, int(last_event_id or 0))
    view = feed_view(ledger, caller)
    while True:
        asked = query.model_copy(update={"after": after})
        page = await to_thread.run_sync(list_events, ledger.registry, asked, view)
        for item in page.items:
            yield ServerSentEvent(
                id=str(item["position"]), event=item["type"], raw_data=json_text(item)
            )
        after = page.next_after
        if page.at_head:
            await asyncio.sleep(STREAM_POLL_SECONDS)
