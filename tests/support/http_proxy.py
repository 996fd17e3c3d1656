"""A small HTTP/1.1 proxy in front of real servers, for what networks do to clients: an
answer lost after the server did the work, a 503 from a gateway, and requests spread
over several API processes (round robin, as a load balancer does)."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from tests.support.processes import free_port

GATEWAY_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
    b"Content-Type: application/problem+json\r\nContent-Length: 56\r\n\r\n"
    b'{"title":"Service Unavailable","status":503,"detail":"x"}'
)


class HttpProxy:
    def __init__(self, *upstreams: int) -> None:
        self.port = free_port()
        self.upstreams = list(upstreams)
        self.forwarded: list[str] = []  # each request's first line, as sent on
        self.sent_to: Counter[int] = Counter()  # requests sent on, by upstream port
        self._turn = 0
        self._plans: list[tuple[str, str]] = []  # (what a request line starts with, action)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lose_the_answer_to(self, request_start: str) -> None:
        """The next request starting so is carried out, and its answer never arrives."""
        with self._lock:
            self._plans.append((request_start, "lose"))

    def refuse(self, request_start: str, times: int = 1) -> None:
        """The next ``times`` requests starting so get a gateway's 503 (not sent on)."""
        with self._lock:
            self._plans += [(request_start, "503")] * times

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _action(self, line: str) -> str:
        with self._lock:
            for i, (start, action) in enumerate(self._plans):
                if line.startswith(start):
                    del self._plans[i]
                    return action
        return "pass"

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while True:
                request = _message(reader)
                if request is None:
                    return
                line = request.split(b"\r\n", 1)[0].decode()
                action = self._action(line)
                if action == "503":
                    conn.sendall(GATEWAY_503)
                    continue
                answer = self._forward(request, line)
                if action == "lose":
                    return  # (the connection closes with no answer)
                conn.sendall(answer)

    def _forward(self, request: bytes, line: str) -> bytes:
        with self._lock:
            upstream = self.upstreams[self._turn % len(self.upstreams)]
            self._turn += 1
            self.forwarded.append(line)
            self.sent_to[upstream] += 1
        with socket.create_connection(("127.0.0.1", upstream)) as out:
            out.sendall(request)
            with out.makefile("rb") as reader:
                answer = _message(reader)
        assert answer is not None, f"no answer from :{upstream} to {line}"
        return answer


def _message(reader: BinaryIO) -> bytes | None:
    """One HTTP/1.1 message, whole (by Content-Length, or chunked), or None at the end."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return None
        head += line
    headers = head.decode("latin-1").lower()
    if "transfer-encoding: chunked" in headers:
        body = b""
        while True:
            size_line = reader.readline()
            body += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            body += reader.read(size + 2)
            if size == 0:
                return head + body
    length = 0
    for header in headers.split("\r\n"):
        if header.startswith("content-length:"):
            length = int(header.split(":", 1)[1])
    return head + reader.read(length)


@contextmanager
def proxying(*upstreams: int) -> Iterator[HttpProxy]:
    proxy = HttpProxy(*upstreams)
    try:
        yield proxy
    finally:
        proxy.close()
