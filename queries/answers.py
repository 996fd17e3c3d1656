"""The one answer cache of an API process: encoded answers, bounded in bytes.

Keys say what an answer is true of, so a cached answer never changes what a read
means: a catalogue answer is keyed by the tables' generation and position (a read
at that position gives those bytes), a model's by the catalogue's generation and the
model's id and version (a version's answer never changes), an answer about a settled
past by the timeline's generation. Least recently used answers go first once the
bytes are spent.

Models' answers have most of the bytes to themselves: gets by id spread over the whole
registry, and a burst of searches, each a new question, would otherwise push them out
(as when models are read right after searches). They are kept compressed (zlib): there
are many of them, each small, read by id across the whole registry, so more of them fit;
decompressing one is cheap, and each is compressed once per version (the figures are in
docs/benchmarks.md).
"""

from __future__ import annotations

import sys
import threading
import zlib
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache

ENTRY_OVERHEAD = 300  # bytes an entry costs beyond its body and key (nodes, objects)
MODELS_SHARE = 0.75  # of the bytes, for models' answers (keys ("model", ...)); the rest for others


@dataclass(frozen=True, slots=True)
class Answer:
    """An encoded answer, the log position it reflects, and (one model's) its version."""

    body: bytes
    position: int
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Kept:
    """An answer as the cache holds it (compressed, if a model's) and what it costs."""

    answer: Answer
    cost: int
    packed: bool

    def unpacked(self) -> Answer:
        if not self.packed:
            return self.answer
        found = self.answer
        return Answer(zlib.decompress(found.body), found.position, found.version)


def _key_bytes(key: Hashable) -> int:
    parts = key if isinstance(key, tuple) else (key,)
    return sum(
        len(part) if isinstance(part, bytes | str) else sys.getsizeof(part) for part in parts
    )


class AnswerCache:
    def __init__(self, max_bytes: int, models_share: float = MODELS_SHARE) -> None:
        self.max_bytes = max_bytes
        models = int(max_bytes * models_share)
        self._models = _lru(models)
        self._others = _lru(max_bytes - models)
        self._lock = threading.Lock()  # threads read the tables and fill it too
        self.hits = 0
        self.misses = 0

    def _segment(self, key: Hashable) -> LRUCache[Hashable, Kept]:
        is_model = isinstance(key, tuple) and key[:1] == ("model",)
        return self._models if is_model else self._others

    def get(self, key: Hashable) -> Answer | None:
        """The answer kept for ``key``, counted as a hit or a miss."""
        with self._lock:
            kept = self._segment(key).get(key)
            if kept is None:
                self.misses += 1
                return None
            self.hits += 1
        return kept.unpacked()

    def peek(self, key: Hashable) -> Answer | None:
        """The same, uncounted: a second look by the one read already counted."""
        with self._lock:
            kept = self._segment(key).get(key)
        return None if kept is None else kept.unpacked()

    def pack(self, key: Hashable, answer: Answer) -> Kept:
        """The answer as it would be kept, and its cost (what the bound counts)."""
        packed = self._segment(key) is self._models
        # Either way a copy as long as its content: an encoder's result may hold its
        # whole working buffer (orjson's does, whatever the answer's size).
        body = zlib.compress(answer.body, 1) if packed else memoryview(answer.body).tobytes()
        cost = len(body) + _key_bytes(key) + ENTRY_OVERHEAD
        return Kept(Answer(body, answer.position, answer.version), cost, packed)

    def room(self, key: Hashable) -> int:
        """The bytes answers like the one keyed ``key`` may take."""
        return int(self._segment(key).maxsize) if self.max_bytes else 0

    def put(self, key: Hashable, answer: Answer) -> None:
        if self.max_bytes:
            self.keep(key, self.pack(key, answer))

    def keep(self, key: Hashable, kept: Kept) -> None:
        segment = self._segment(key)
        if kept.cost > segment.maxsize or not self.max_bytes:
            return  # too big to keep (or the cache is off): answered, not kept
        with self._lock:
            segment[key] = kept

    def discard(self, key: Hashable) -> bool:
        """Drop the answer kept for ``key``; whether there was one."""
        with self._lock:
            return self._segment(key).pop(key, None) is not None

    def __contains__(self, key: Hashable) -> bool:  # (a look that is no use)
        with self._lock:
            return key in self._segment(key)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return [*self._models.keys(), *self._others.keys()]

    @property
    def size_bytes(self) -> int:
        return int(self._models.currsize + self._others.currsize)

    def __len__(self) -> int:
        return len(self._models) + len(self._others)


def _lru(max_bytes: int) -> LRUCache[Hashable, Kept]:
    return LRUCache(maxsize=max(max_bytes, 1), getsizeof=lambda kept: kept.cost)
