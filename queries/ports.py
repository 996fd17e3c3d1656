"""The read side's one port to the event log: read it, never write it.

History, time travel, the feed, export and audit read the log through ``EventLog``;
projections and processes follow it through the same object (its pages, and the
doorbell rung after each append in this process). It wraps the library's recorder
and mapper, and turns a store failure into ``LogUnavailable`` once, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Mapper,
    Notification,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder

log = logging.getLogger("modelledger.store")

Doorbell = Callable[[int], None]


class LogUnavailable(Exception):
    """The event log cannot be read; the read may be retried."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field: str | None = None


class HistoryRecorder(Protocol):
    """What our recorders (SQLite, PostgreSQL, memory) add to the library's for reads."""

    def select_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]: ...

    def last_change(self, originator_id: UUID) -> tuple[int, int] | None:
        """The version and position of the aggregate's last event; None: no such one."""


@contextmanager
def log_errors() -> Iterator[None]:
    """Store error -> ``LogUnavailable``, once, for every read of the log."""
    try:
        yield
    except IntegrityError:
        raise
    except PersistenceError as error:
        # The driver's words stay in the log; clients get a stable message.
        log.warning("event store unavailable: %s", error)
        raise LogUnavailable("the event store is unavailable; retry shortly") from error


class EventLog:
    """The log, read-only: its end, pages of it, one aggregate's history, decoded events."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        doorbells: list[Doorbell] | None = None,
    ) -> None:
        self._recorder = recorder  # private: this port only reads
        self.mapper = mapper
        # Rung with the new position after each append in this process, so followers in
        # it look at once instead of waiting for their next poll.
        self.doorbells: list[Doorbell] = doorbells if doorbells is not None else []

    @classmethod
    def of(cls, app: Application[UUID]) -> EventLog:
        """The log of an eventsourcing application (and its doorbells, if it rings any)."""
        return cls(app.recorder, app.mapper, getattr(app, "doorbells", None))

    def head(self) -> int:
        """The position of the last event (0: an empty log)."""
        with log_errors():
            return self._recorder.max_notification_id() or 0

    def page(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        topics: Sequence[str] = (),
    ) -> Sequence[Notification]:
        """Up to ``limit`` stored events after position ``after`` (to ``until``; of these
        ``topics`` only, if any), in order."""
        with log_errors():
            return self._recorder.select_notifications(
                start=after, limit=limit, stop=until, topics=topics, inclusive_of_start=False
            )

    @property
    def subscribable(self) -> bool:
        """Whether the store pushes new events (PostgreSQL's LISTEN/NOTIFY); else poll."""
        return isinstance(self._recorder, PostgresApplicationRecorder)

    @property
    def gaps_possible(self) -> bool:
        """Whether positions may skip numbers (PostgreSQL's sequence: a rolled-back
        insert leaves a gap), so a gap in the log is not a lost event."""
        return isinstance(self._recorder, PostgresApplicationRecorder)

    def subscribe(self, after: int) -> Any:
        """The store's subscription to events after ``after`` (a context manager and an
        iterator of notifications), when it is ``subscribable``."""
        assert isinstance(self._recorder, PostgresApplicationRecorder)
        return self._recorder.subscribe(gt=after)

    def decode(self, stored: StoredEvent) -> Any:
        """The domain event (upcast to its current version) a stored event holds."""
        return self.mapper.to_domain_event(stored)

    def stored_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]:
        with log_errors():
            return self._history.select_history(originator_id)

    def history(self, originator_id: UUID) -> list[tuple[int, Any]]:
        """One aggregate's events with their positions, oldest first."""
        return [(p, self.decode(stored)) for p, stored in self.stored_history(originator_id)]

    def last_change(self, originator_id: UUID) -> tuple[int, int] | None:
        """The aggregate's version and the position of its last event (None: none such):
        what a read of one model must reflect."""
        with log_errors():
            return self._history.last_change(originator_id)

    def first_event(self, originator_id: UUID) -> Any | None:
        with log_errors():
            stored = self._recorder.select_events(originator_id, lte=1)
        return self.decode(stored[0]) if stored else None

    @property
    def _history(self) -> HistoryRecorder:
        return cast(HistoryRecorder, self._recorder)
