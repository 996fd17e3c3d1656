"""Per-key rate limits: a token bucket per caller, shared through Redis when one is
configured (so every API replica counts against one allowance), else per process.

``rate`` requests a second on average, ``burst`` at once. A refused request
learns how long until it would be allowed (``Retry-After``). When Redis cannot
be reached, this process's own buckets stand in until it is back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError

from api.errors import RateLimited

log = logging.getLogger("modelledger.api")

MAX_BUCKETS = 100_000  # bounded memory: the least recently seen callers are forgotten
REDIS_PAUSE_SECONDS = 5.0  # after a Redis failure, count locally this long before retrying

# One bucket per key, refilled by elapsed time on Redis' own clock (replicas' clocks
# may differ); the hash expires once a full bucket would have refilled anyway.
TOKEN_BUCKET_LUA = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'seen')
local tokens = tonumber(state[1]) or burst
local seen = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - seen) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'seen', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


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
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)
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
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait


@dataclass
class RedisBuckets:
    """Buckets in Redis (one script call per request), with local ones as the stand-in."""

    client: Any  # redis.asyncio.Redis
    local: TokenBuckets
    prefix: str = "modelledger:rate:"
    _paused_until: float = 0.0
    _script: Any = None

    def __post_init__(self) -> None:
        self._script = self.client.register_script(TOKEN_BUCKET_LUA)

    async def take(self, caller: str) -> float:
        if self.local.rate <= 0:
            return 0.0
        if time.monotonic() < self._paused_until:
            return await self.local.take(caller)
        try:
            args = [self.local.rate, self.local.burst]
            wait = await self._script(keys=[self.prefix + caller], args=args)
        except (RedisError, OSError) as error:
            self._paused_until = time.monotonic() + REDIS_PAUSE_SECONDS
            log.warning("rate limits: Redis unavailable (%s); counting in this process", error)
            return await self.local.take(caller)
        return float(wait)
