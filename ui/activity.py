"""The web UI's activity page: the event feed, filtered as the API's feed is, and live
through the UI's own server-sent-events route (the session cookie: a browser's
EventSource sends no Authorization header)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError

from api.services import MAX_STREAMS_PER_KEY, STREAM_POLL_SECONDS, get_services
from commands.keyring import KeyRing
from queries.events import FeedView, list_events
from queries.messages import ListEvents
from ui.access import Viewer, ViewerDep
from ui.actions import Refused
from ui.rendering import asked_of, page, said, same_with, templates
from ui.sessions import IDLE, LONGEST
from write_model.access import Action, NotAuthenticated

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/activity", response_class=HTMLResponse)
async def activity(request: Request, who: ViewerDep) -> Response:
    """The event feed, filtered by model, type and actor (as the API's feed)."""
    services, asked = get_services(request), asked_of(request)
    asked["type"] = [t for t in request.query_params.getlist("type") if t]
    asked.setdefault("limit", 50)
    live = len(asked) == 2 and not asked["type"]  # no filter, no moment: the latest, live
    if live:
        head = await to_thread.run_sync(services.event_log.head)
        asked["after"] = max(0, head - 50)
    if "as_of" in asked:  # the feed up to that moment
        asked["until"] = asked.pop("as_of")
    try:
        query = ListEvents.model_validate(asked)
    except ValidationError as invalid:
        return page(
            request, "activity.html", 422, who=who, asked=asked, found=None, problem=said(invalid)
        )
    found = await to_thread.run_sync(
        list_events, services.event_log, query, feed_view(request, who)
    )
    more = None if found.at_head else same_with(request, after=str(found.next_after))
    return page(
        request,
        "activity.html",
        who=who,
        asked=asked,
        found=found.body(),
        problem=None,
        next_url=more,
        live=live and found.at_head,
    )


def feed_view(request: Request, who: Viewer) -> FeedView:
    """What the signed-in key may see of the feed, as on the API."""
    principal = who.principal
    return FeedView(
        principal.visible_projects,
        principal.may(Action.ADMINISTER),
        get_services(request).model_projects,
    )


async def stream_slot(request: Request, who: ViewerDep) -> Viewer:
    """A stream holds a connection as long as it likes: a few per key at once (refused
    before the stream's answer begins)."""
    if get_services(request).open_streams[who.principal.name] >= MAX_STREAMS_PER_KEY:
        raise Refused(429, f"this key has {MAX_STREAMS_PER_KEY} streams open already")
    return who


@router.get("/activity/stream", response_class=EventSourceResponse)
async def activity_stream(
    request: Request,
    who: Annotated[Viewer, Depends(stream_slot)],
    after: Annotated[int, Query(ge=0, le=10**18)] = 0,
    model_id: UUID | None = None,
    last_event_id: Annotated[str | None, Header(pattern=r"^\d{1,18}$")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The activity page's live feed: events after ``after`` (or, reconnecting, after the
    last one it was sent) as they are stored, for as long as the session's key holds."""
    services, principal = get_services(request), who.principal
    after, view = max(after, int(last_event_id or 0)), feed_view(request, who)
    streams, keyring = services.open_streams, services.keyring
    streams[principal.name] += 1
    try:
        while True:
            query = ListEvents(after=after, limit=100, model_id=model_id)
            found = await to_thread.run_sync(list_events, services.event_log, query, view)
            if not await _still_in_force(who, keyring):
                return  # (reconnecting, the browser sends the cookie it holds now)
            for item in found.items:
                row = " ".join(templates().get_template("activity_row.html").render(e=item).split())
                yield ServerSentEvent(id=str(item["position"]), event="change", raw_data=row)
            after = found.next_after
            if found.at_head:
                await asyncio.sleep(STREAM_POLL_SECONDS)
    finally:
        streams[principal.name] -= 1


async def _still_in_force(who: Viewer, keyring: KeyRing | None) -> bool:
    """Whether the session the stream was opened in still holds: not idle or too old
    (the stream's own requests do not renew it), not signed out, its key not revoked."""
    session = who.session
    if time.time() > min(session.began + LONGEST, session.used + IDLE):
        return False
    if keyring is None:
        return True
    try:
        await to_thread.run_sync(keyring.holder, session.key_id, session.id)
    except NotAuthenticated:
        return False
    return True
