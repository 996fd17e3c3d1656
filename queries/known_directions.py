"""The metric directions this process last read from the catalogue, and through which
log position they are known to still hold, so a model's cached answer (whose best
metrics were ranked with them) is given only while they do.

They hold from the last definition change the tables had taken in (their stamp) up to
the next one. The API process's watch reads the type of every event appended
(modelledger.web's ChangesTakenIn) and tells ``watched`` which were definition changes:
up to the first of those after the read, the directions are known to hold; beyond what
the watch has looked at, only up to where they were read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from queries.directions import Directions


@dataclass(frozen=True)
class KnownView:
    """What is known, at one moment (for a read to use whole)."""

    generation: int
    directions: Directions
    through: int

    def hold_at(self, generation: int, position: int) -> bool:
        return generation == self.generation and self.directions.stamp <= position <= self.through


@dataclass
class KnownDirections:
    directions: Directions = field(default_factory=Directions)
    generation: int = -1  # of the catalogue they were read from
    read_at: int = -1  # the catalogue's position then
    watched_from: int | None = None  # the watch has seen every event after this...
    watched_to: int = -1  # ...up to this
    changes: list[int] = field(default_factory=list)  # definition changes after read_at
    lock: threading.Lock = field(default_factory=threading.Lock)

    def through(self) -> int:
        """The last log position at which the directions are known to hold."""
        if self.watched_from is None or self.read_at < self.watched_from:
            return self.read_at
        if self.changes:
            return self.changes[0] - 1
        return max(self.watched_to, self.read_at)

    def view(self) -> KnownView:
        with self.lock:
            return KnownView(self.generation, self.directions, self.through())

    def read(self, directions: Directions, generation: int, position: int) -> None:
        """Directions read from the catalogue at ``position``: kept if newer."""
        with self.lock:
            if generation == self.generation and position < self.read_at:
                return
            if generation != self.generation:  # another catalogue: what was watched is void
                self.watched_from, self.changes = None, []
            self.directions, self.generation = directions, generation
            self.read_at = max(position, directions.stamp)
            self.changes = [q for q in self.changes if q > self.read_at]

    def watched(self, after: int, to: int, changes: Sequence[int]) -> None:
        """The watch read every event in (``after``, ``to``]; ``changes`` were definitions'."""
        with self.lock:
            if self.watched_from is None or after != self.watched_to:  # (first, or a gap)
                self.watched_from, self.changes = after, []
            self.watched_to = to
            self.changes += [q for q in changes if q > self.read_at]

    def outdated(self, catalogue: int) -> bool:
        """Whether the catalogue is where these are not known to hold: it has taken in a
        definition change they lack, or the watch missed a stretch of the log."""
        with self.lock:
            return self.through() < catalogue
