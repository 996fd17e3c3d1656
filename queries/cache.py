"""Answers kept per projection position: a query asked again before the projection
moves gets the same bytes without touching the tables.

An entry is keyed by the projection's generation and position, so it can never be
older than the tables it came from, and it can never answer a caller whose
min_position is past it (the position is read first). Issue 6 puts a shared
(Redis) store behind the same keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class AnswerCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

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

    def put(self, key: Hashable, answer: bytes) -> None:
        if self.size == 0:
            return
        with self.lock:
            self.entries[key] = answer
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
