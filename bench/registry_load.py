"""The same load for both registries: N clients, each looping one operation, over one
aiohttp session; only completions inside the measured window count."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

Operation = Callable[[aiohttp.ClientSession, int], Awaitable[None]]
REQUEST_TIMEOUT_S = 120.0


class Refused(Exception):
    """A registry answered a status outside 2xx."""


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, **params: Any
) -> Any:
    async with session.request(method, url, json=body, params=params or None) as response:
        if response.status >= 300:
            raise Refused(f"{method} {url.split('?')[0]}: {response.status}")
        return await response.json(content_type=None)


@dataclass
class Measured:
    completed: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[min(98, max(0, round(q * 100) - 1))]


async def drive(
    operation: Operation,
    headers: dict[str, str],
    clients: int,
    warmup: float,
    duration: float,
    min_completed: int = 0,
    max_seconds: float = 300.0,
) -> Measured:
    """Run ``clients`` loops of ``operation`` for ``warmup + duration`` seconds (longer,
    up to ``max_seconds``, until ``min_completed`` answers are in: slow queries)."""
    result = Measured()
    counter = itertools.count()
    start = time.monotonic()
    measure_at = start + warmup
    stop_at = measure_at + duration
    hard_stop = measure_at + max_seconds

    def running() -> bool:
        now = time.monotonic()
        return now < stop_at or (result.completed < min_completed and now < hard_stop)

    async def client(session: aiohttp.ClientSession) -> None:
        while running():
            began = time.monotonic()
            try:
                await operation(session, next(counter))
            except (Refused, aiohttp.ClientError, TimeoutError) as error:
                if began >= measure_at:
                    result.errors += 1
                    result.first_error = result.first_error or str(error)
                continue
            if began >= measure_at:
                result.completed += 1
                result.latencies.append(time.monotonic() - began)

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        headers=headers, timeout=timeout, connector=connector
    ) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    result.seconds = time.monotonic() - measure_at  # with the drain of the last calls
    return result
