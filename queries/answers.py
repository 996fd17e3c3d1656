"""The one answer cache of an API process: encoded answers, bounded in bytes.

Keys say what an answer is true of, so a cached answer never changes what a read
means: a catalogue answer is keyed by the tables' generation and position (a read
at that position gives those bytes), a model's by the catalogue's generation and the
model's id and version (a version's answer never changes), an answer about a settled
past by the timeline's generation. Least recently used answers go first once the
bytes are spent.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache

ENTRY_OVERHEAD = 300  # bytes an entry costs beyond its body and key (nodes, objects)


@dataclass(frozen=True, slots=True)
class Answer:
    """An encoded answer, the log position it reflects, and (one model's) its version."""

    body: bytes
    position: int
    version: int | None = None


@dataclass(frozen=True, slots=True)
class _Kept:
    answer: Answer
    cost: int


def _key_bytes(key: Hashable) -> int:
    parts = key if isinstance(key, tuple) else (key,)
    return sum(
        len(part) if isinstance(part, bytes | str) else sys.getsizeof(part) for part in parts
    )


class AnswerCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: LRUCache[Hashable, _Kept] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda kept: kept.cost
        )
        self._lock = threading.Lock()  # threads read the tables and fill it too
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Answer | None:
        """The answer kept for ``key``, counted as a hit or a miss."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is None:
                self.misses += 1
                return None
            self.hits += 1
            return kept.answer

    def peek(self, key: Hashable) -> Answer | None:
        """The same, uncounted: a second look by the one read already counted."""
        with self._lock:
            kept = self._entries.get(key)
        return None if kept is None else kept.answer

    def put(self, key: Hashable, answer: Answer) -> None:
        # A copy as long as its content: an encoder's result may hold its whole working
        # buffer (orjson's: about 8 KB, whatever the answer's size).
        body = memoryview(answer.body).tobytes()
        cost = len(body) + _key_bytes(key) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return  # too big to keep (or the cache is off): answered, not kept
        with self._lock:
            self._entries[key] = _Kept(Answer(body, answer.position, answer.version), cost)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries.keys())

    @property
    def size_bytes(self) -> int:
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)
