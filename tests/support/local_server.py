"""An ASGI app served by uvicorn in a daemon thread on 127.0.0.1: the tests' stand-ins for
the providers' APIs (OpenAI, the Hugging Face Hub)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class LocalServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(app: Any, name: str, port: int = 0) -> LocalServer:
    """Bind ``port`` (0: a free one; the socket is ours, so no other test can take it in
    between) and serve ``app`` until ``stop()``; returns once it accepts connections."""
    sock = socket.create_server(("127.0.0.1", port))
    bound: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        interface="asgi3",  # a bound method is not recognised as ASGI 3 by itself
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.005)
    return LocalServer(server, thread, bound)
