"""The one answer cache of an API process: encoded answers, bounded in bytes.

Keys say what an answer is true of, so a cached answer never changes what a read
means: a catalogue answer is keyed by the tables' generation and position (a read
at that position gives those bytes), a model's by its id and version (a version's
answer never changes), an answer about a settled past by the timeline's generation.
Least recently used answers go first once the bytes are spent.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache

ENTRY_OVERHEAD = 250  # bytes an entry costs beyond its body (key, node, Answer)


@dataclass(frozen=True, slots=True)
class Answer:
    """An encoded answer, the log position it reflects, and (one model's) its version."""

    body: bytes
    position: int
    version: int | None = None


def _cost(answer: Answer) -> int:
    return len(answer.body) + ENTRY_OVERHEAD


class AnswerCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: LRUCache[Hashable, Answer] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=_cost
        )
        self._lock = threading.Lock()  # threads read the tables and fill it too
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Answer | None:
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: Hashable, answer: Answer) -> None:
        if _cost(answer) > self.max_bytes:
            return  # too big to keep (or the cache is off): answered, not kept
        with self._lock:
            self._entries[key] = answer

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries.keys())

    @property
    def size_bytes(self) -> int:
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)
