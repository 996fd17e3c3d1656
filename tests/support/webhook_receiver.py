"""A webhook receiver for tests: an HTTP endpoint that checks every delivery with the
`standardwebhooks` library (never the project's own signing code), records it, and
answers as the test tells it (200 by default; a planned 410, 429 with Retry-After...).
It can go down (its port refuses connections) and come back on the same port."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.local_server import LocalServer, serve_in_thread

Answer = tuple[int, dict[str, str]]


@dataclass(frozen=True)
class Delivery:
    message_id: str
    body: dict[str, Any]
    verified_by: tuple[str, ...]  # the secrets (of those the receiver holds) that verify it
    at: float  # time.time() when it arrived

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.body["data"])


@dataclass
class WebhookReceiver:
    secrets: list[str] = field(default_factory=list)
    planned: list[Answer] = field(default_factory=list)  # the next answers, in order
    answer: Callable[[Delivery], Answer] = lambda _: (200, {})
    deliveries: list[Delivery] = field(default_factory=list)
    server: LocalServer | None = None
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds each answer waits (a slow endpoint)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        self.server = serve_in_thread(self.app, "webhook-receiver", self.port)
        self.port = self.server.port

    def down(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def verified(self) -> list[Delivery]:
        """Every delivery so far, each checked to verify with at least one secret."""
        with self.lock:
            found = list(self.deliveries)
        unverified = [d.message_id for d in found if not d.verified_by]
        assert not unverified, f"deliveries no secret verifies: {unverified}"
        return found

    def wait_for(
        self, check: Callable[[list[Delivery]], bool], what: str, seconds: float = 20.0
    ) -> list[Delivery]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.verified()
            if check(found):
                return found
            assert time.monotonic() < deadline, f"{what}: received {[d.type for d in found]}"
            time.sleep(0.02)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender died before the body was whole: no delivery was made
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        delivery = Delivery(
            headers.get("webhook-id", ""),
            json.loads(body) if body else {},
            tuple(s for s in list(self.secrets) if _verifies(s, body, headers)),
            time.time(),
        )
        with self.lock:
            self.deliveries.append(delivery)
            status, extra = self.planned.pop(0) if self.planned else self.answer(delivery)
        if self.delay:
            await asyncio.sleep(self.delay)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                # (latin-1: a test may send bytes a header must not hold)
                "headers": [(k.encode(), v.encode("latin-1")) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": f"answer {status}".encode()})


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


@contextmanager
def receiving() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()
