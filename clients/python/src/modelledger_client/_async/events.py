"""Following the log live (the server's server-sent events), resuming after the last
event seen when the connection drops or the server restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from modelledger_client import routes
from modelledger_client._async.session import AsyncSession
from modelledger_client.errors import Unavailable
from modelledger_client.models import Event


async def follow(
    session: AsyncSession,
    after: int | None,
    *,
    model_id: str | None = None,
    types: list[str] | None = None,
) -> AsyncIterator[Event]:
    if after is None:  # from now: the log's head as the server sees it
        answer = await session.send("GET", routes.EVENTS, params={"after": 0, "limit": 1})
        after = int(answer.headers["X-Log-Head"])
    params: dict[str, Any] = {"model_id": model_id, "type": types or []}
    attempt = 0
    while True:
        try:
            async for event in _stream(session, after, params):
                after, attempt = event.position, 0
                yield event
        except Unavailable:  # a retry may cure it: the server is restarting, say
            pass
        if attempt + 1 >= session.retry.attempts * 2:
            raise Unavailable({"title": "Unavailable", "detail": "the event stream broke off"})
        await asyncio.sleep(session.retry.wait(attempt))
        attempt += 1


async def _stream(
    session: AsyncSession, after: int, params: dict[str, Any]
) -> AsyncIterator[Event]:
    """One connection's events (its end, or a dropped connection, ends it)."""
    asked = session.reading({**params, "after": after})
    data: list[str] = []
    try:
        async for line in session.lines(routes.EVENT_STREAM, asked, {"Last-Event-ID": str(after)}):
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                yield Event(**json.loads("\n".join(data)))
                data = []
    except httpx.TransportError as error:
        raise Unavailable(
            {"title": "Unavailable", "detail": f"the stream broke off: {error!r}"}
        ) from error
