"""When the client tries again, and how long it waits (shared by both clients)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; between them exponential backoff with full jitter from
    ``first_wait`` seconds, at most ``longest_wait``, and never less than a Retry-After."""

    attempts: int = 6
    first_wait: float = 0.2
    longest_wait: float = 10.0

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        backoff = min(self.longest_wait, self.first_wait * 2**attempt)
        jittered = random.uniform(0, backoff)
        told = _seconds(retry_after)
        return max(jittered, min(told, 60.0)) if told is not None else jittered


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds: a number of them, or an HTTP date."""
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
