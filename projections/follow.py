"""Reading the event log for projections: pages for catch-up, then live following.

PostgreSQL follows through eventsourcing's subscription (LISTEN/NOTIFY); the
SQLite and in-memory recorders have no subscriptions in eventsourcing 9.5, so
they poll ``select_notifications`` on a short interval, and an in-process
commit rings a doorbell so the embedded default sees its own writes at once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from queue import Full, Queue
from typing import Any, Protocol

from eventsourcing.persistence import Notification

from queries.ports import EventLog

log = logging.getLogger("modelledger.projections")

# The longest a live projection on PostgreSQL goes without reading the log itself.
RECHECK_SECONDS = 1.0


def read_page(event_log: EventLog, after: int, limit: int) -> Sequence[Notification]:
    return event_log.page(after, limit)


class Follower(Protocol):
    def next_batch(self, after: int, limit: int, timeout: float) -> Sequence[Notification]:
        """Notifications after ``after`` (at most ``limit``); waits up to ``timeout``
        when there are none yet."""

    def close(self) -> None: ...


class PollingFollower:
    def __init__(self, event_log: EventLog, interval: float, doorbell: threading.Event) -> None:
        self.event_log = event_log
        self.interval = interval
        self.doorbell = doorbell

    def next_batch(self, after: int, limit: int, timeout: float) -> Sequence[Notification]:
        self.doorbell.clear()
        page = read_page(self.event_log, after, limit)
        if page:
            return page
        self.doorbell.wait(min(timeout, self.interval))
        return read_page(self.event_log, after, limit)

    def close(self) -> None:
        self.doorbell.set()


class SubscriptionFollower:
    """eventsourcing's PostgreSQL subscription, drained in batches by the runner."""

    def __init__(self, event_log: EventLog) -> None:
        self.event_log = event_log
        self.buffer: deque[Notification] = deque()
        self.arrived = threading.Event()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.subscription: object | None = None
        self.started_after: int | None = None
        self.closed = False
        self.behind = False  # the last look at the log found a full page
        self.lock = threading.Lock()

    def _start(self, after: int) -> None:
        # Under the lock, so close() from another thread never sees a thread
        # that exists but has not started, nor starts one after closing.
        with self.lock:
            if self.closed:
                return
            self.error = None
            self.buffer.clear()
            self.started_after = after
            subscription = self.event_log.subscribe(after)

            def pump() -> None:
                try:
                    with subscription:
                        for notification in subscription:
                            self.buffer.append(notification)
                            self.arrived.set()
                except BaseException as error:  # the database went away: restart later
                    self.error = error
                    self.arrived.set()

            thread = threading.Thread(target=pump, name="projection-subscription", daemon=True)
            thread.start()
            self.subscription, self.thread = subscription, thread

    def _stop(self) -> None:
        with self.lock:
            subscription, self.subscription = self.subscription, None
            thread, self.thread = self.thread, None
        if subscription is not None:
            subscription.stop()  # type: ignore[attr-defined]
        if thread is not None:
            thread.join(timeout=5)

    def next_batch(self, after: int, limit: int, timeout: float) -> Sequence[Notification]:
        if self.error is not None:
            error = self.error
            self._stop()
            raise error
        if self.subscription is None:
            self._start(after)
        if self.closed:
            return []
        if not self.buffer and not self.behind:
            self.arrived.clear()
            if not self.buffer:
                self.arrived.wait(min(timeout, RECHECK_SECONDS))
        if self.closed:
            return []
        if not self.buffer and (timeout > 0 or self.behind):
            # A NOTIFY committed before the subscription's LISTEN took hold (or lost)
            # leaves it waiting for the next one (eventsourcing issue #305): a quiet
            # wait ends with a look at the log itself, and while that finds full
            # pages, the next look comes without waiting.
            page = read_page(self.event_log, after, limit)
            self.behind = len(page) == limit
            return page
        self.behind = False
        batch: list[Notification] = []
        while self.buffer and len(batch) < limit:
            notification = self.buffer.popleft()
            if notification.id > after:  # a rebuild's swap may have moved us ahead
                batch.append(notification)
        return batch

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.arrived.set()  # wake a runner waiting for events
        self._stop()


def follower_for(event_log: EventLog, interval: float, doorbell: threading.Event) -> Follower:
    if event_log.subscribable:
        return SubscriptionFollower(event_log)
    return PollingFollower(event_log, interval, doorbell)


Decoded = list[tuple[int, Any]]


class PageReader:
    """Reads and decodes the next pages of the log in a thread while the caller
    applies the current one: the database's time (reading, and the caller's
    writes) overlaps with Python's (docs/benchmarks.md)."""

    def __init__(
        self,
        event_log: EventLog,
        after: int,
        limit: int,
        decode: Callable[[Sequence[Notification]], Decoded],
        depth: int = 2,
    ) -> None:
        self.event_log, self.limit, self.decode = event_log, limit, decode
        self.expected = after  # where the caller's next page must start
        self.pages: Queue[tuple[int, Sequence[Notification], Decoded] | BaseException] = Queue(
            maxsize=depth
        )
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(after,), daemon=True)
        self.thread.start()

    def _read(self, after: int) -> None:
        try:
            while not self.stopped.is_set():
                page = read_page(self.event_log, after, self.limit)
                item = (after, page, self.decode(page))
                while not self.stopped.is_set():
                    try:
                        self.pages.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
                if len(page) < self.limit:
                    return  # the end of the log for now: the caller starts another later
                after = page[-1].id
        except BaseException as error:  # handed to the caller, who decides
            self.pages.put(error)

    def next_page(self) -> tuple[Sequence[Notification], Decoded]:
        item = self.pages.get()
        if isinstance(item, BaseException):
            raise item
        start, page, events = item
        assert start == self.expected, (start, self.expected)
        if page:
            self.expected = page[-1].id
        return page, events

    def stop(self) -> None:
        self.stopped.set()
