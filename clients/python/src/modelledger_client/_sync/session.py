# Generated from ../_async by clients/python/generate_sync.py: do not edit.
"""The HTTP session under ``AsyncModelLedger``: the key, retries, never doubling a
command, and reading one's own writes.

- Every command carries an ``Idempotency-Key`` made here, the same on each retry, so a
  command retried after a lost answer is carried out once (the server answers the retry
  with the first answer).
- Connection errors, 429, 502, 503 and 504 are retried with backoff and jitter, honouring
  ``Retry-After``.
- The highest log position the client's commands returned is sent as ``min_position``
  on every read, so a read reflects the client's own writes whichever API process
  answers it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from modelledger_client.errors import Unavailable, error_for
from modelledger_client.retries import RETRIED_STATUSES, RetryPolicy

DEFAULT_URL = "http://127.0.0.1:8000"
STREAM_SILENCE = 300.0  # seconds without a byte after which a stream is opened anew


class Session:
    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("MODELLEDGER_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("MODELLEDGER_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retry = retry or RetryPolicy()
        self.position = 0  # the highest position this client's commands returned
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def saw(self, position: int | None) -> None:
        if position is not None and position > self.position:
            self.position = position

    def command(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        **headers: str,
    ) -> Any:
        """Send a command (retried safely: one Idempotency-Key for all its tries)."""
        headers = {"Idempotency-Key": str(uuid.uuid4()), **headers}
        answer = self.send(method, path, json=body, params=params, headers=headers, retried=True)
        found = answer.json()
        self.saw(found.get("position"))
        return found

    def command_once(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Send a command that takes no Idempotency-Key (issuing a key, whose secret is
        shown once): never sent twice, so a lost answer is an error, not a retry."""
        answer = self.send(method, path, json=body, retried=False)
        found = answer.json()
        self.saw(found.get("position"))
        return found

    def query(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A read, reflecting at least every command this client sent."""
        answer = self.send("GET", path, params=self.reading(params))
        return answer.json()

    def reading(self, params: dict[str, Any] | None) -> dict[str, Any]:
        asked = {k: v for k, v in (params or {}).items() if v is not None and v != []}
        if self.position and "min_position" not in asked:
            asked["min_position"] = self.position
        return asked

    def send(self, method: str, path: str, *, retried: bool = True, **kwargs: Any) -> Any:
        """The answer to a request, tried again on what a retry may cure; a refusal
        raised as the exception its problem type names."""
        attempt = 0
        while True:
            try:
                answer = self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                # Never sent (refused connection): always safe to try again.
                safe = retried or isinstance(error, httpx.ConnectError)
                if not safe or attempt + 1 >= self.retry.attempts:
                    raise _unreachable(self.url, error, retried) from error
                time.sleep(self.retry.wait(attempt))
                attempt += 1
                continue
            again = retried and attempt + 1 < self.retry.attempts
            if answer.status_code in RETRIED_STATUSES and again:
                time.sleep(self.retry.wait(attempt, answer.headers.get("Retry-After")))
                attempt += 1
                continue
            if answer.is_error:
                raise error_for(answer.status_code, _problem(answer))
            return answer

    def lines(
        self, path: str, params: dict[str, Any], headers: dict[str, str], opened: list[bool]
    ) -> Iterator[str]:
        """The lines of a streamed answer (server-sent events), as they arrive; ``opened``
        is marked once the server answered. A connection silent for ``STREAM_SILENCE``
        seconds is given up (a peer gone without closing it), to be opened again."""
        timeout = httpx.Timeout(30.0, read=STREAM_SILENCE)
        with self._http.stream(
            "GET", path, params=params, headers=headers, timeout=timeout
        ) as answer:
            if answer.is_error:
                answer.read()
                raise error_for(answer.status_code, _problem(answer))
            opened.append(True)
            for line in answer.iter_lines():
                yield line


def _problem(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        found = None
    if isinstance(found, dict):
        if "Retry-After" in answer.headers:
            found.setdefault("retry_after", answer.headers["Retry-After"])
        return found
    return {"title": answer.reason_phrase, "status": answer.status_code, "detail": answer.text}


def _unreachable(url: str, error: Exception, retried: bool) -> Unavailable:
    detail = f"{url} could not be reached: {error!r}"
    if not retried:
        detail += " (not retried: this command takes no Idempotency-Key, and may have been done)"
    return Unavailable({"title": "Unavailable", "detail": detail}, None)
