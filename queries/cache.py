"""Answers kept per projection position: a query asked again before the projection
moves gets the same bytes without touching the tables.

An entry is keyed by the projection's generation and position, so it can never be
older than the tables it came from, and it can never answer a caller whose
min_position is past it (the position is read first). With Redis configured, a
shared store (adapters.redis_answers) stands behind the same keys: ``recall`` and
``put`` use it, from the threads that read the tables (never the event loop).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from read_model.state import read_states

# How long a projection's position read from the database is taken as current
# by queries that did not ask for a later one (they answer with X-Position).
# `refresh_positions` runs every REFRESH_SECONDS, so it never goes stale while
# the database answers; the projections of this process also report each commit.
FRESH_SECONDS = 0.25
REFRESH_SECONDS = 0.02


@dataclass(frozen=True)
class Seen:
    generation: int
    position: int
    at: float


class SharedStore(Protocol):
    hits: int
    misses: int

    def get(self, key: Hashable) -> bytes | None: ...

    def put(self, key: Hashable, answer: bytes) -> None: ...


class AnswerCache:
    def __init__(self, size: int, shared: SharedStore | None = None) -> None:
        self.size = size
        self.shared = shared
        self.entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.positions: dict[str, Seen] = {}
        self.moved = threading.Condition()  # a projection was seen further on

    def note(self, projection: str, generation: int, position: int) -> None:
        """Where a query, a commit or an announcement found the projection (never back)."""
        last = self.positions.get(projection)
        if last is None or last.generation != generation or position >= last.position:
            self.positions[projection] = Seen(generation, position, time.monotonic())
            if last is None or position > last.position:
                with self.moved:
                    self.moved.notify_all()

    def wait_for(self, projection: str, position: int, timeout: float) -> None:
        """Until the projection is seen at ``position``, or ``timeout`` (then ask the tables)."""

        def reached() -> bool:
            last = self.positions.get(projection)
            return last is not None and last.position >= position

        with self.moved:
            self.moved.wait_for(reached, timeout)

    def seen(self, projection: str) -> Seen | None:
        """The projection's position if read within FRESH_SECONDS: a cached answer
        at it is served without a database round trip (or a thread)."""
        last = self.positions.get(projection)
        if last is None or time.monotonic() - last.at > FRESH_SECONDS:
            return None
        return last

    def get(self, key: Hashable) -> bytes | None:
        if self.size == 0:
            return None
        with self.lock:
            found = self.entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self.entries.move_to_end(key)
            self.hits += 1
            return found

    def recall(self, key: Hashable) -> bytes | None:
        """This process's answer, else another process's (blocking: call it in a thread)."""
        found = self.get(key)
        if found is None and self.shared is not None:
            found = self.shared.get(key)
            if found is not None:
                self._keep(key, found)
        return found

    def put(self, key: Hashable, answer: bytes) -> None:
        """Keep an answer here, and for the other processes (blocking: in a thread)."""
        self._keep(key, answer)
        if self.shared is not None:
            self.shared.put(key, answer)

    def _keep(self, key: Hashable, answer: bytes) -> None:
        if self.size == 0:
            return
        with self.lock:
            self.entries[key] = answer
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


def refresh_positions(answers: AnswerCache, engine: Engine) -> None:
    """Where each projection stands, from its state row (one small query)."""
    with engine.connect() as conn:
        for name, state in read_states(conn).items():
            answers.note(name, state.generation, state.position)
