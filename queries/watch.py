"""The API process's one watch on the log: where the projections stand, kept current.

Reads that asked for no position answer from the cache at the position last seen
(queries.positions); this loop reads the state rows so that position is never long
out of date, and when a projection has moved it tells ``on_moved`` (modelledger.web hands
in ChangesTakenIn: what the process does with changes made elsewhere). Commits of
projections in this process and, with Redis, other processes' announcements reach
the positions directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Engine

from queries.positions import FRESH_SECONDS, Positions

log = logging.getLogger("modelledger.queries")

# Half the time a position is taken as current: the cache's view never goes stale
# while the database answers (a read then goes to the tables, correct but slower).
LOOK_SECONDS = FRESH_SECONDS / 2.5


@dataclass
class PositionsWatch:
    positions: Positions
    engine: Engine
    log_head: Callable[[], int]
    # Called with the last position it returned, when a projection moved; returns the
    # position it has now taken in.
    on_moved: Callable[[int], int] | None = None
    interval: float = LOOK_SECONDS
    _marks: dict[str, tuple[int, int]] = field(default_factory=dict)

    async def run(self) -> None:
        after: int | None = None
        while True:
            try:
                if self.on_moved is not None and after is None:
                    # The head before the first look: only changes from now on matter,
                    # and none made after the process first saw the projections is missed.
                    after = await to_thread.run_sync(self.log_head)
                await to_thread.run_sync(self.positions.refresh, self.engine)
                if self.on_moved is not None and after is not None:
                    after = await self._tell(after)
            except Exception as error:  # a database outage: reads say so themselves
                log.debug("positions not followed: %s", error)
            await asyncio.sleep(self.interval)

    async def _tell(self, after: int) -> int:
        """``on_moved`` when a projection moved: the log may have grown, or a projection
        may have taken in changes ``on_moved`` read before it had."""
        assert self.on_moved is not None
        marks = {name: (s.generation, s.position) for name, s in self.positions.seen_at.items()}
        if marks == self._marks and self.positions.furthest() <= after:
            return after
        self._marks = marks
        return await to_thread.run_sync(self.on_moved, after)
