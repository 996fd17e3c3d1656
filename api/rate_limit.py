"""Per-key rate limits: a token bucket per caller, in this process, or shared through
Redis when one is configured (adapters/redis_limits.py: every API replica counts
against one allowance; this process's buckets stand in while Redis is down).

``rate`` requests a second on average, ``burst`` at once. A refused request
learns how long until it would be allowed (``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from cachetools import LRUCache

from api.errors import RateLimited

MAX_BUCKETS = 100_000


class RateLimiter(Protocol):
    async def take(self, caller: str) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is due."""


async def enforce(limiter: RateLimiter, caller: str, what: str) -> None:
    wait = await limiter.take(caller)
    if wait > 0:
        seconds = math.ceil(wait)
        raise RateLimited(f"too many requests from {what}; retry in {seconds} s", seconds)


@dataclass
class TokenBuckets:
    """This process's buckets."""

    rate: float  # tokens a second; 0: unlimited
    burst: int
    # The least recently seen callers are forgotten first: bounded memory.
    _buckets: LRUCache[str, tuple[float, float]] = field(
        default_factory=lambda: LRUCache(maxsize=MAX_BUCKETS)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def take(self, caller: str) -> float:
        return self.take_at(caller, time.monotonic())

    def take_at(self, caller: str, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        with self._lock:
            tokens, seen = self._buckets.pop(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[caller] = (tokens - 1 if wait == 0.0 else tokens, now)
        return wait
