"""Per-key rate limits: a token bucket per principal (in this process).

``rate`` requests a second on average, ``burst`` at once. A refused request
learns how long until it would be allowed (``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from write_model.errors import DomainError

MAX_BUCKETS = 100_000  # bounded memory: the least recently seen callers are forgotten


class RateLimited(DomainError):
    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass
class TokenBuckets:
    rate: float  # tokens a second; 0: unlimited
    burst: int
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, caller: str, now: float | None = None) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is due."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.pop(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[caller] = (tokens - 1 if wait == 0.0 else tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait

    def check(self, caller: str, what: str) -> None:
        wait = self.take(caller)
        if wait > 0:
            raise RateLimited(
                f"too many requests from {what}; retry in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )
