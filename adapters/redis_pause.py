"""After Redis fails, leave it alone for a while: callers fall back to their own work
(counting locally, polling) instead of waiting on a server that is down, and try Redis
again once the pause is over."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

PAUSE_SECONDS = 5.0


class RedisPause:
    def __init__(self, what: str, log: logging.Logger, seconds: float | None = None) -> None:
        self.what = what  # the words of the warning: what goes on without Redis
        self.log = log
        self.seconds = seconds
        self._until = 0.0

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._until

    def failed(self, error: RedisError | OSError) -> None:
        """Pause after this failure (the length is read now, so tests can shorten it)."""
        seconds = PAUSE_SECONDS if self.seconds is None else self.seconds
        self._until = time.monotonic() + seconds
        self.log.warning("Redis unavailable (%s); %s", error, self.what)
