"""Redis clients as every process opens them (the composition root imports this only
when a Redis URL is set, so a process without Redis does not load the client library)."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

# Short timeouts: a Redis that hangs must cost little (it is then skipped for a while).
# One immediate retry: a pooled connection Redis dropped (a restart, a network cut) is
# replaced instead of failing the first command after it is back.
TIMEOUT_SECONDS = 0.5
RETRIED = [RedisConnectionError, RedisTimeoutError]


def connect_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), retries=1),
        retry_on_error=RETRIED,
    )


def connect_async_redis(url: str) -> AsyncRedis:
    return AsyncRedis.from_url(
        url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        retry=AsyncRetry(NoBackoff(), retries=1),
        retry_on_error=RETRIED,
    )
