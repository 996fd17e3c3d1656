"""Query answers shared by every API process through Redis.

Keys are the local answer cache's: the projection's generation and the position
the answer reflects (or FINAL for a settled past), and the question. Positions
only grow and a generation's tables never change below a position, so a shared
answer is exactly what any process would compute at that position: never stale
for a caller's min_position. When Redis cannot be reached, answers are computed
locally, and Redis is tried again after a pause.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Hashable

import redis
from redis.exceptions import RedisError

log = logging.getLogger("modelledger.cache")

PAUSE_SECONDS = 5.0


class SharedAnswers:
    def __init__(self, client: redis.Redis, ttl_seconds: int = 300) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.hits = 0
        self.misses = 0
        self._paused_until = 0.0

    def get(self, key: Hashable) -> bytes | None:
        if self._paused():
            return None
        try:
            found = self.client.get(_redis_key(key))
        except RedisError as error:
            self._pause(error)
            return None
        if not isinstance(found, bytes):  # None: not there (the client decodes nothing)
            self.misses += 1
            return None
        self.hits += 1
        return found

    def put(self, key: Hashable, answer: bytes) -> None:
        if self._paused():
            return
        try:
            self.client.set(_redis_key(key), answer, ex=self.ttl_seconds)
        except RedisError as error:
            self._pause(error)

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def _pause(self, error: RedisError) -> None:
        self._paused_until = time.monotonic() + PAUSE_SECONDS
        log.warning("answer cache: Redis unavailable (%s); answering from this process", error)


def _redis_key(key: Hashable) -> str:
    return "modelledger:answer:" + hashlib.sha256(repr(key).encode()).hexdigest()
