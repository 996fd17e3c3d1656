"""Rate limits shared by every API process, in Redis: one script call per request
keeps a token bucket per key. While Redis cannot be reached, this process's own
buckets stand in (api/rate_limit.py), and Redis is tried again after a pause."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError

from adapters.redis_pause import RedisPause

log = logging.getLogger("modelledger.api")


class Buckets(Protocol):
    rate: float
    burst: int

    async def take(self, caller: str) -> float: ...


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


@dataclass
class RedisBuckets:
    """Buckets in Redis (one script call per request), with local ones as the stand-in."""

    client: Any  # redis.asyncio.Redis
    local: Buckets
    prefix: str = "modelledger:rate:"
    _script: Any = None
    _pause: RedisPause = field(
        default_factory=lambda: RedisPause("rate limits are counted in this process", log)
    )

    def __post_init__(self) -> None:
        self._script = self.client.register_script(TOKEN_BUCKET_LUA)

    async def take(self, caller: str) -> float:
        if self.local.rate <= 0:
            return 0.0
        if self._pause.paused:
            return await self.local.take(caller)
        try:
            args = [self.local.rate, self.local.burst]
            wait = await self._script(keys=[self.prefix + caller], args=args)
        except (RedisError, OSError) as error:
            self._pause.failed(error)
            return await self.local.take(caller)
        return float(wait)
