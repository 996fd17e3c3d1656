"""The read tables as every reader reads them: at a position (waiting, bounded, for
``min_position``: queries.reading), and through this process's one answer cache
(queries.answers), whose keys say what each answer is true of."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection, Engine

from queries.answers import Answer, AnswerCache
from queries.positions import Positions
from queries.reading import Snapshot, for_reading, reading
from queries.sources import is_settled
from read_model.encoding import json_bytes
from read_model.tables import TIMELINE_VERSION

Question = tuple[str, bytes]  # what was asked: the query's kind and its canonical fields
FINAL = -1  # the "position" of answers about a past that can no longer change


@dataclass
class ReadTables:
    """The read tables as every reader reads them: at a position (waiting, bounded, for
    ``min_position``), and through this process's one answer cache."""

    engine: Engine
    positions: Positions
    answers: AnswerCache
    timeout: float  # MODELLEDGER_MIN_POSITION_TIMEOUT
    log_head: Callable[[], int]

    @contextmanager
    def reading(
        self, projection: str, version: int, min_position: int | None = None
    ) -> Iterator[Snapshot]:
        with reading(
            self.engine,
            projection,
            version,
            min_position,
            self.timeout,
            log_head=self.log_head,
            wait=self.positions.wait_for,
        ) as snapshot:
            self.positions.reached(projection, snapshot.generation, snapshot.position)
            yield snapshot

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection as reads use it, for one statement that reads a projection's
        state with its rows (driver errors are the caller's: it falls back to ``reading``)."""
        return for_reading(self.engine).connect()

    async def cached(
        self,
        projection: str,
        version: int,
        question: Question,
        min_position: int | None,
        read: Callable[[Snapshot], Any],
    ) -> Answer:
        """The projection's answer to ``question``: from the cache on the event loop when
        the projection was seen moments ago at a position that satisfies ``min_position``;
        else read in a thread (and kept)."""
        seen = self.positions.seen(projection)
        looked = seen is not None and (min_position is None or seen.position >= min_position)
        if seen is not None and looked:
            found = self.answers.get((projection, seen.generation, seen.position, question))
            if found is not None:
                return found
        return await to_thread.run_sync(
            self._read, projection, version, question, min_position, read, looked
        )

    def _read(
        self,
        projection: str,
        version: int,
        question: Question,
        min_position: int | None,
        read: Callable[[Snapshot], Any],
        looked: bool = False,
    ) -> Answer:
        with self.reading(projection, version, min_position) as snapshot:
            key = (projection, snapshot.generation, snapshot.position, question)
            # One read is counted once: a look on the event loop already was.
            found = self.answers.peek(key) if looked else self.answers.get(key)
            if found is None:
                found = Answer(json_bytes(read(snapshot)), snapshot.position)
                self.answers.put(key, found)
            return found

    async def past_answer(
        self,
        question: Question,
        as_of: str,
        min_position: int | None,
        read: Callable[[Snapshot], Any],
    ) -> Answer:
        """An answer as of a past time, from the timeline. Once the timeline has gone well
        past that time the answer can no longer change: it is kept as final."""
        seen = self.positions.seen("timeline")
        looked = seen is not None and (min_position is None or seen.position >= min_position)
        if seen is not None and looked:
            found = self.answers.get(("timeline", seen.generation, FINAL, question))
            if found is not None:
                return Answer(found.body, seen.position)
        return await to_thread.run_sync(
            self._read_past, question, as_of, min_position, read, looked
        )

    def _read_past(
        self,
        question: Question,
        as_of: str,
        min_position: int | None,
        read: Callable[[Snapshot], Any],
        looked: bool = False,
    ) -> Answer:
        with self.reading("timeline", TIMELINE_VERSION, min_position) as snapshot:
            key = ("timeline", snapshot.generation, FINAL, question)
            found = self.answers.peek(key) if looked else self.answers.get(key)
            if found is None:
                found = Answer(json_bytes(read(snapshot)), snapshot.position)
                if is_settled(snapshot, as_of):
                    self.answers.put(key, found)
            return Answer(found.body, snapshot.position)
