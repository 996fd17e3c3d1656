# Generated from ../_async by clients/python/generate_sync.py: do not edit.
"""Following the log live (the server's server-sent events), resuming after the last
event seen when the connection drops or the server restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from modelledger_client import routes
from modelledger_client._sync.session import Session
from modelledger_client.errors import RateLimited, Unavailable
from modelledger_client.models import Event


def follow(
    session: Session,
    after: int | None,
    *,
    model_id: str | None = None,
    types: list[str] | None = None,
) -> Iterator[Event]:
    if after is None:  # from now: the log's head as the server sees it
        answer = session.send("GET", routes.EVENTS, params={"after": 0, "limit": 1})
        after = int(answer.headers["X-Log-Head"])
    params: dict[str, Any] = {"model_id": model_id, "type": types or []}
    attempt = 0
    while True:
        opened: list[bool] = []  # (a stream that opened and was closed while quiet is fine)
        told: float | None = None
        try:
            for event in _stream(session, after, params, opened):
                after = event.position
                yield event
        except Unavailable:  # a retry may cure it: the server is restarting, say
            pass
        except RateLimited as refused:  # the key's streams are all taken, for now
            told = refused.retry_after
        if opened:
            attempt = 0
        elif attempt + 1 >= session.retry.attempts * 2:
            raise Unavailable({"title": "Unavailable", "detail": "the event stream broke off"})
        wait = session.retry.wait(attempt)
        time.sleep(max(wait, told) if told is not None else wait)
        attempt += 1


def _stream(
    session: Session, after: int, params: dict[str, Any], opened: list[bool]
) -> Iterator[Event]:
    """One connection's events (its end, or a dropped connection, ends it)."""
    asked = session.reading({**params, "after": after})
    data: list[str] = []
    resume = {"Last-Event-ID": str(after)}
    try:
        for line in session.lines(routes.EVENT_STREAM, asked, resume, opened):
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                yield Event(**json.loads("\n".join(data)))
                data = []
    except httpx.TransportError as error:
        raise Unavailable(
            {"title": "Unavailable", "detail": f"the stream broke off: {error!r}"}
        ) from error
