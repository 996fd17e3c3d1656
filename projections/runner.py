"""Runs one projection: catch up, follow live, rebuild blue/green, hold the lease.

Every batch is one transaction holding the projection's row changes and its
new position, guarded by ``WHERE owner = me AND position = old``: a worker
that lost its lease, or raced another, writes nothing (exactly once, one
writer). A rebuild fills the next generation's tables between live batches and
swaps them in with one update of the state row once it has caught up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Notification, PersistenceError
from sqlalchemy import ColumnElement, Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from projections import applying
from projections.applying import (
    ProjectionFailed,
    decode,
    topics_of,
)
from projections.base import Projection
from projections.follow import Follower, PageReader, follower_for
from projections.kept import KeptRows
from projections.lease import LeaseLost, guarded_update, release_lease, take_lease
from queries.ports import EventLog, LogUnavailable
from read_model.state import (
    ProjectionState,
    projection_state,
    read_state,
)
from write_model.model import AIModel

log = logging.getLogger("modelledger.projections")


@dataclass(frozen=True)
class RunnerOptions:
    batch_size: int = 1000  # live
    rebuild_batch_size: int = 10_000  # rebuilds and catching up
    poll_interval: float = 0.05
    lease_seconds: float = 10.0
    retry_seconds: float = 1.0
    # Under load (a live page of at least linger_from events), wait before the next
    # page so pages grow: each costs a lease check, a state read and a commit whatever
    # its size (docs/benchmarks.md). A lone event is still projected at once.
    linger_seconds: float = 0.05
    linger_from: int = 8


# A database that cannot be reached: wait and retry (anything else is a bug).
UNAVAILABLE = (OperationalError, InterfaceError, PersistenceError, LogUnavailable, OSError)


@dataclass
class ProjectionRunner:
    projection: type[Projection]
    engine: Engine
    event_log: EventLog
    owner: str
    options: RunnerOptions = field(default_factory=RunnerOptions)
    # Told (name, generation, position) after each live commit and swap: queries in
    # this process learn the new position without asking the database.
    on_commit: Callable[[str, int, int], None] | None = None

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.holds_lease = False
        self.topics = topics_of(self.projection)
        self.follower: Follower | None = None
        self.caught_up = False
        self.lease_renewed = 0.0
        self.doorbell = threading.Event()
        self.readers: dict[str, PageReader] = {}  # by the position column they feed
        self.kept = KeptRows()  # what live batches wrote, while the lease is held

    def ring(self, _position: int = 0) -> None:
        """An append in this process: look now rather than at the next poll."""
        self.doorbell.set()

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        try:  # now, so a process answering requests holds its projections already
            self._acquire_lease()
        except UNAVAILABLE as error:  # the thread tries again
            self.last_error = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        self.thread = threading.Thread(
            target=self.run, name=f"projection-{self.projection.name}", daemon=True
        )
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self.follower is not None:
            self.follower.close()
        if self.thread is not None:
            self.thread.join(timeout)
        self._stop_readers()
        self._release_lease()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.step_safely()

    def step_safely(self) -> None:
        """One step; whatever goes wrong is handled here (tests drive steps with it)."""
        try:
            self.step()
        except UNAVAILABLE as error:
            self._unavailable(error)
        except LeaseLost:
            self._let_go()
        except Exception as error:  # never let the thread die silently
            log.exception("projection %s: unexpected error", self.projection.name)
            self._unavailable(error)

    def _unavailable(self, error: BaseException) -> None:
        """A database is down: say so, wait, retry from the tracked position."""
        self.last_error = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        log.warning("projection %s waiting for the database: %s", self.projection.name, error)
        self._let_go()
        if self.follower is not None:
            self.follower.close()
            self.follower = None
        self.stopping.wait(self.options.retry_seconds)

    def _let_go(self) -> None:
        """Whatever this worker held or read ahead is void: start again from the row."""
        self.holds_lease = False
        self.caught_up = False
        self.kept.clear()
        self._stop_readers()

    # -- one step -----------------------------------------------------------

    def step(self) -> bool:
        """Do one unit of work; False when there was nothing to do."""
        if not self.holds_lease and not self._acquire_lease():
            self.stopping.wait(min(1.0, self.options.lease_seconds / 3))
            return False
        with self.engine.connect() as conn:
            state = read_state(conn, self.projection.name)
        assert state is not None
        self.last_error = None
        if (state.rebuild_requested or state.rebuild_generation is not None) and (
            self._rebuild_step(state)
        ):
            return True
        if state.status == "failed":
            self.stopping.wait(self.options.poll_interval * 10)
            self._renew_lease_if_due()
            return False
        if state.version != self.projection.version:
            return True  # old tables stay frozen (old schema) until the rebuild swaps
        rebuilding = state.rebuild_requested or state.rebuild_generation is not None
        worked = self._live_step(state, wait=not rebuilding)
        self._renew_lease_if_due()
        return worked

    def _live_step(self, state: ProjectionState, wait: bool) -> bool:
        if self.caught_up:
            if self.follower is None:
                self.follower = follower_for(
                    self.event_log, self.options.poll_interval, self.doorbell
                )
            timeout = self.options.lease_seconds / 3 if wait else 0.0
            page = self.follower.next_batch(state.position, self.options.batch_size, timeout)
            events = None
        else:  # catching up: big pages, read ahead
            limit = self.options.rebuild_batch_size
            page, events = self._read_ahead("position", state.position, limit)
            self.caught_up = len(page) < limit
        if not page:
            return False
        try:
            self._apply(page, state.generation, state.position, "position", events)
        except ProjectionFailed as failure:
            self._fail(failure)
        if self.caught_up and self.options.linger_from <= len(page) < self.options.batch_size:
            self.stopping.wait(self.options.linger_seconds)
        return True

    def _rebuild_step(self, state: ProjectionState) -> bool:
        """One batch of the rebuild; True once it has swapped in (the state changed)."""
        name = self.projection.name
        if state.rebuild_generation is None:
            generation = state.generation + 1
            with self.engine.begin() as conn:
                self.projection.drop_tables(conn, generation)  # a crashed earlier attempt
                self.projection.create_tables(conn, generation)
                self._guarded_state(
                    conn,
                    projection_state.c.rebuild_generation.is_(None),
                    rebuild_generation=generation,
                    rebuild_position=0,
                    rebuild_requested=False,
                )
            log.info("projection %s: rebuilding into generation %d", name, generation)
            return False
        after = state.rebuild_position or 0
        page, events = self._read_ahead("rebuild_position", after, self.options.rebuild_batch_size)
        if page:
            try:
                self._apply(page, state.rebuild_generation, after, "rebuild_position", events)
            except ProjectionFailed as failure:
                self._abandon_rebuild(state, failure)
                return True
            after = page[-1].id
        if len(page) < self.options.rebuild_batch_size and (
            after >= state.position or state.version != self.projection.version
        ):
            self._swap(state, after)
            return True
        return False

    # -- transactions -------------------------------------------------------

    def _read_ahead(
        self, column: str, after: int, limit: int
    ) -> tuple[Sequence[Notification], list[tuple[int, AIModel.Event]]]:
        """The next page after ``after``, read (and decoded) while the last one was applied."""
        reader = self.readers.get(column)
        if reader is None or reader.expected != after:
            if reader is not None:
                reader.stop()
            reader = PageReader(self.event_log, after, limit, self._decode)
            self.readers[column] = reader
        page, events = reader.next_page()
        if len(page) < limit:
            self.readers.pop(column).stop()  # it has stopped at the end of the log
        return page, events

    def _stop_readers(self) -> None:
        for reader in self.readers.values():
            reader.stop()
        self.readers.clear()

    def _apply(
        self,
        page: Sequence[Notification],
        generation: int,
        after: int,
        column: str,
        events: list[tuple[int, AIModel.Event]] | None = None,
    ) -> None:
        if events is None:
            events = self._decode(page)
        new_position = page[-1].id
        # Live batches only: a rebuild writes another generation, once per model.
        kept = self.kept if column == "position" else None
        try:
            with self.engine.begin() as conn:
                self._claim(conn, column, after, new_position)
                batch = applying.apply_events(conn, self.projection, generation, events, kept)
            if kept is not None and batch is not None:
                kept.put(generation, batch.keep())  # committed: now what the tables hold
            if column == "position" and self.on_commit is not None:
                self.on_commit(self.projection.name, generation, new_position)
        except (*UNAVAILABLE, LeaseLost):
            raise
        except Exception:
            self.kept.clear()
            # Find the event at fault: commit what precedes it one by one.
            # (If every event passes alone, the batch is committed all the same.)
            self._apply_one_by_one(page, events, generation, after, column)

    def _apply_one_by_one(
        self,
        page: Sequence[Notification],
        events: list[tuple[int, AIModel.Event]],
        generation: int,
        after: int,
        column: str,
    ) -> None:
        by_position = dict(events)
        for notification in page:
            event = by_position.get(notification.id)
            try:
                with self.engine.begin() as conn:
                    self._claim(conn, column, after, notification.id)
                    if event is not None:
                        applying.apply_events(
                            conn, self.projection, generation, [(notification.id, event)]
                        )
            except (*UNAVAILABLE, LeaseLost):
                raise
            except Exception as error:
                raise ProjectionFailed(notification.id, error) from error
            after = notification.id

    def _decode(self, page: Sequence[Notification]) -> list[tuple[int, AIModel.Event]]:
        return decode(self.event_log, self.topics, page)

    def _claim(self, conn: Connection, column: str, old: int, new: int) -> None:
        """Move the tracked position, only if we hold the lease and nobody moved it."""
        lease_until = time.time() + self.options.lease_seconds
        self._guarded_state(
            conn, projection_state.c[column] == old, **{column: new, "lease_until": lease_until}
        )
        self.lease_renewed = time.monotonic()

    def _guarded_state(self, conn: Connection, *where: ColumnElement[bool], **values: Any) -> None:
        guarded_update(conn, self.projection.name, self.owner, *where, **values)

    # -- outcomes -----------------------------------------------------------

    def _fail(self, failure: ProjectionFailed) -> None:
        """Stop this projection (the others go on) and say why, until a restart."""
        log.error("projection %s stopped: %s", self.projection.name, failure)
        self.last_error = str(failure)
        with self.engine.begin() as conn:
            self._guarded_state(
                conn, status="failed", error=str(failure)[:2000], error_position=failure.position
            )

    def _abandon_rebuild(self, state: ProjectionState, failure: ProjectionFailed) -> None:
        log.error("projection %s: rebuild failed: %s", self.projection.name, failure)
        assert state.rebuild_generation is not None
        with self.engine.begin() as conn:
            self.projection.drop_tables(conn, state.rebuild_generation)
            self._guarded_state(
                conn,
                rebuild_generation=None,
                rebuild_position=None,
                status="failed" if state.version != self.projection.version else state.status,
                error=f"rebuild failed: {failure}"[:2000],
                error_position=failure.position,
            )

    def _swap(self, state: ProjectionState, position: int) -> None:
        """Serve the rebuilt generation: one update of the state row, then drop the old."""
        assert state.rebuild_generation is not None
        t = projection_state.c
        with self.engine.begin() as conn:
            self._guarded_state(
                conn,
                t.rebuild_generation == state.rebuild_generation,
                t.rebuild_position == position,
                generation=state.rebuild_generation,
                position=position,
                version=self.projection.version,
                rebuild_generation=None,
                rebuild_position=None,
                status="running",
                error=None,
                error_position=None,
            )
        if self.on_commit is not None:
            self.on_commit(self.projection.name, state.rebuild_generation, position)
        with self.engine.begin() as conn:
            self.projection.drop_tables(conn, state.generation)
        log.info(
            "projection %s: generation %d serving at position %d",
            self.projection.name,
            state.rebuild_generation,
            position,
        )

    # -- lease --------------------------------------------------------------

    def _acquire_lease(self) -> bool:
        name, seconds = self.projection.name, self.options.lease_seconds
        self.holds_lease = take_lease(self.engine, name, self.owner, seconds)
        if self.holds_lease:
            self.caught_up = False
            self.kept.clear()  # another worker may have written since
            self.lease_renewed = time.monotonic()
            log.info("projection %s: lease taken by %s", self.projection.name, self.owner)
        return self.holds_lease

    def _renew_lease_if_due(self) -> None:
        if time.monotonic() - self.lease_renewed < self.options.lease_seconds / 3:
            return
        with self.engine.begin() as conn:
            self._guarded_state(conn, lease_until=time.time() + self.options.lease_seconds)
        self.lease_renewed = time.monotonic()

    def _release_lease(self) -> None:
        try:
            release_lease(self.engine, self.projection.name, self.owner)
        except UNAVAILABLE as error:
            log.warning("projection %s: lease not released: %s", self.projection.name, error)
        self.holds_lease = False
