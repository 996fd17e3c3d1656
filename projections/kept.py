"""The rows a projection wrote, kept for its next batches, so a model changed again
soon is not read back from the tables it was just written to.

Reading back is much of the projection worker's time under a stream of changes
(docs/benchmarks.md), and it is needless: while the worker holds
the lease it is the tables' only writer. So a batch *takes* the rows it touches
(they leave the cache: a batch that fails never puts back what it changed), and
the runner puts them back only once the batch has committed. Whatever could make
them stale empties the cache: another generation, a lost lease, an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cachetools import LRUCache

# Models per projection: enough for the models changed again soon, while bounding the
# rows the catalogue and the timeline keep in the worker (their cost: docs/benchmarks.md).
KEPT_MODELS = 10_000


class KeptRows:
    def __init__(self, capacity: int = KEPT_MODELS) -> None:
        self.capacity = capacity
        self.generation: int | None = None
        self.items: LRUCache[str, Any] = LRUCache(maxsize=max(capacity, 1))

    def take(self, generation: int, ids: Iterable[str]) -> dict[str, Any]:
        """Remove and return what is kept of these models in ``generation``."""
        if generation != self.generation:
            self.clear()
            return {}
        taken = {}
        for model_id in ids:
            item = self.items.pop(model_id, None)
            if item is not None:
                taken[model_id] = item
        return taken

    def put(self, generation: int, items: dict[str, Any]) -> None:
        """What a committed batch wrote; the least recently written go first."""
        if generation != self.generation:
            self.clear()
            self.generation = generation
        if self.capacity == 0:
            return
        for model_id, item in items.items():
            self.items[model_id] = item  # the most recent now; the least recent go

    def clear(self) -> None:
        self.items.clear()
        self.generation = None
