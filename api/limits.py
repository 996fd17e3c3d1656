"""Limits on what a request may carry, enforced before it reaches FastAPI: its headers'
count and size (431), its body's media type (415) and size (413).

FastAPI's own ``max_body_size`` answers a too-large declared Content-Length
in text/plain (from Starlette, before our handlers); clients here get
problem+json for every error, so the cap is enforced here instead. The HTTP
server (uvicorn with httptools) sets no limit on headers at all.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    BAD_REQUEST,
    HEADERS_TOO_LARGE,
    PAYLOAD_TOO_LARGE,
    PROBLEM_JSON,
    UNSUPPORTED_MEDIA_TYPE,
    ProblemKind,
    problem_body,
)

MAX_HEADER_BYTES = 8 * 1024  # one header, name and value
MAX_HEADERS_BYTES = 64 * 1024  # all of them
MAX_HEADERS = 100
Headers = list[tuple[bytes, bytes]]


class Refused(Exception):
    """The request breaks a limit: answered with this problem, the app never sees it."""

    def __init__(self, kind: ProblemKind, detail: str, field: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.field = field


class ClientGone(Exception):
    """The client went away before its body was in."""


class RequestLimits:
    """Answers 431, 415, 413 (and 400 for a malformed Content-Length) as problem+json."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_headers(scope["headers"])
            declared = declared_length(scope["headers"])
            if declared is not None and declared > self.max_bytes:
                raise self._too_large()
            forms = _takes_forms(scope["path"]) and _is_form(scope["headers"])
            if declared and not forms:  # refused before it is read
                check_media_type(scope["headers"])
            body = await self._read(receive)
            if body and not forms:  # streamed: refused once it is known to be there
                check_media_type(scope["headers"])
        except Refused as refused:
            await _problem(send, refused)
            return
        except ClientGone:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _too_large(self) -> Refused:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        return Refused(PAYLOAD_TOO_LARGE, detail, "body")


def check_headers(headers: Headers) -> None:
    if len(headers) > MAX_HEADERS:
        detail = f"{len(headers)} headers; at most {MAX_HEADERS} are accepted"
        raise Refused(HEADERS_TOO_LARGE, detail, "headers")
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            detail = f"the {name.decode('latin-1')[:100]} header is over {MAX_HEADER_BYTES} bytes"
            raise Refused(HEADERS_TOO_LARGE, detail, name.decode("latin-1")[:100])
        total += size
    if total > MAX_HEADERS_BYTES:
        detail = f"the headers are over {MAX_HEADERS_BYTES} bytes in all"
        raise Refused(HEADERS_TOO_LARGE, detail, "headers")


def declared_length(headers: Headers) -> int | None:
    declared = dict(headers).get(b"content-length")
    if declared is None:
        return None
    if not declared.isdigit():
        raise Refused(BAD_REQUEST, "Content-Length must be a number", "Content-Length")
    return int(declared)


def _takes_forms(path: str) -> bool:
    """The web UI's pages take HTML forms (its routes read them); the API takes JSON."""
    return path == "/ui" or path.startswith("/ui/")


def _is_form(headers: Headers) -> bool:
    content_type = dict(headers).get(b"content-type") or b""
    return content_type.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"


def is_json(content_type: bytes | None) -> bool:
    """application/json or application/*+json, whatever the parameters (charset...)."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def check_media_type(headers: Headers) -> None:
    """A body is JSON, said so; a request without a body needs no Content-Type."""
    content_type = dict(headers).get(b"content-type")
    if not is_json(content_type):
        sent = "none" if content_type is None else content_type.decode("latin-1")[:100]
        detail = f"send the body as application/json (the Content-Type was {sent})"
        raise Refused(UNSUPPORTED_MEDIA_TYPE, detail, "Content-Type")


async def _problem(send: Send, refused: Refused) -> None:
    errors: list[dict[str, Any]] = [{"field": refused.field, "message": refused.detail}]
    body = json.dumps(problem_body(refused.kind, refused.detail, errors)).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": refused.kind.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
