"""When a failed delivery is tried again: the retry schedule of the Standard Webhooks
specification (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), each
wait stretched by up to a tenth at random so that many retries do not all land at
once; a Retry-After from the endpoint (429, 503) is waited out, up to a day."""

from __future__ import annotations

import random
from collections.abc import Sequence

DEFAULT_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1
LONGEST_RETRY_AFTER = 86_400.0


def parse_schedule(text: str) -> tuple[float, ...]:
    """``0,5,300``: seconds to wait before each attempt: the first counts from the event's
    queueing (usually 0: at once), each other from the failed attempt's answer."""
    try:
        waits = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("a retry schedule is seconds separated by commas: 0,5,300") from None
    if not waits or any(wait < 0 for wait in waits):
        raise ValueError("a retry schedule needs at least one wait, none negative")
    return waits


def next_wait(schedule: Sequence[float], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones; None: none left."""
    if attempts >= len(schedule):
        return None
    wait = schedule[attempts] * (1 + random.uniform(0, JITTER))
    if retry_after is not None:
        wait = max(wait, min(retry_after, LONGEST_RETRY_AFTER))
    return wait
