"""Where each projection stands, as this process last saw it, and waiting for one to
reach a position (read-your-writes).

Seen four ways, all told to ``reached``: a read of the tables, a commit of a projection
running in this process, (with Redis) a commit announced by another process, and the
API process's watch (queries.watch), which reads the state rows every 0.1 s, so a
position is never taken as current for long without a look.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from read_model.state import read_states

# How long a position read is taken as current by reads that asked for no later one
# (they answer with X-Position: the position they reflect).
FRESH_SECONDS = 0.25


@dataclass(frozen=True)
class Seen:
    generation: int
    position: int
    at: float


class Positions:
    def __init__(self) -> None:
        self.seen_at: dict[str, Seen] = {}
        self.moved = threading.Condition()  # a projection was seen further on

    def reached(self, projection: str, generation: int, position: int) -> None:
        """Where a read, a commit or an announcement found the projection (never back)."""
        with self.moved:  # (threads tell it too: a slower one must not move it back)
            last = self.seen_at.get(projection)
            if last is None or last.generation != generation or position >= last.position:
                self.seen_at[projection] = Seen(generation, position, time.monotonic())
                if last is None or position > last.position:
                    self.moved.notify_all()

    def wait_for(self, projection: str, position: int, timeout: float) -> None:
        """Until the projection is seen at ``position``, or ``timeout`` (then ask the tables)."""

        def there() -> bool:
            last = self.seen_at.get(projection)
            return last is not None and last.position >= position

        with self.moved:
            self.moved.wait_for(there, timeout)

    def seen(self, projection: str) -> Seen | None:
        """The projection's position if seen within FRESH_SECONDS: an answer cached at
        it is given without a database round trip (or a thread)."""
        last = self.seen_at.get(projection)
        if last is None or time.monotonic() - last.at > FRESH_SECONDS:
            return None
        return last

    def furthest_of(self, projection: str) -> int:
        """The furthest position the projection was seen at (-1: never seen)."""
        last = self.seen_at.get(projection)
        return -1 if last is None else last.position

    def furthest(self) -> int:
        """The furthest position any projection was seen at (0: none yet)."""
        return max((s.position for s in self.seen_at.values()), default=0)

    def refresh(self, engine: Engine) -> None:
        """Where each projection stands, from its state row (one small query)."""
        with engine.connect() as conn:
            for name, state in read_states(conn).items():
                self.reached(name, state.generation, state.position)
