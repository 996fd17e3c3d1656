"""Group commit: concurrent commands' events share one transaction.

Each eventsourcing ``insert_events`` is its own transaction; on PostgreSQL it
also takes an EXCLUSIVE table lock, so concurrent commands queue behind each
other's lock, commit and fsync. Measured in bench/commands.py, committing the
commands that arrive while one commit is in flight together in the next one
is what lets HTTP commands reach the one-connection INSERT+COMMIT ceiling.
The library has no such option, hence this mixin.

A batch that hits a uniqueness conflict is retried in halves, down to single
commands, so one lost race or duplicate never fails the other commands of its batch.
With group commit off, batches hold one command: the committer thread still
does the writing, so a caller on an event loop never blocks on the database.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, InterfaceError, StoredEvent

MAX_BATCH_COMMANDS = 256

log = logging.getLogger("modelledger.group_commit")


@dataclass
class _Pending:
    stored_events: Sequence[StoredEvent]
    idempotency: Sequence[Any]
    result: Future[Sequence[int]] = field(default_factory=Future)


class GroupCommitMixin:
    """Put before an eventsourcing ApplicationRecorder class in the bases."""

    group_commit_enabled = True

    def submit(
        self, stored_events: Sequence[StoredEvent], idempotency: Sequence[Any]
    ) -> Future[Sequence[int]]:
        """Queue events for the next commit; the future holds their positions."""
        pending = _Pending(stored_events, list(idempotency))
        if getattr(self, "_closed", False):
            pending.result.set_exception(InterfaceError("the event store is closed"))
        else:
            self._commit_queue().put(pending)
        return pending.result

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc,no-any-return]
        return self.submit(stored_events, kwargs.get("idempotency", ())).result()

    def stop_group_commit(self) -> None:
        """Commit what is queued, then stop; later submissions fail at once."""
        self._closed = True
        existing = getattr(self, "_queue", None)
        if existing is not None:
            existing.put(None)
            self._committer.join(timeout=10)

    def _commit_queue(self) -> queue.SimpleQueue[_Pending | None]:
        existing: queue.SimpleQueue[_Pending | None] | None = getattr(self, "_queue", None)
        if existing is not None:
            return existing
        with _start_lock:
            if getattr(self, "_queue", None) is None:
                self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
                self._committer = threading.Thread(
                    target=self._run_committer, name="group-commit", daemon=True
                )
                self._committer.start()
        return self._queue

    def _run_committer(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._commit(batch)
            except BaseException as error:
                log.exception("group commit failed")
                for pending in batch:
                    _resolve(pending, error=error)

    def _next_batch(self) -> list[_Pending] | None:
        """Wait for one command, then take what else is queued (None: stop)."""
        limit = MAX_BATCH_COMMANDS if self.group_commit_enabled else 1
        batch: list[_Pending] = []
        while not batch:
            first = self._queue.get()
            if first is None:
                return None
            batch = _live([first])
        while len(batch) < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch += _live([item])
        return batch

    def _commit(self, batch: list[_Pending]) -> None:
        """Commit the batch; if a command in it conflicts, commit each half the same way.

        Halving finds k conflicting commands of n in about k * log2(n) transactions,
        where trying one by one takes n: with many clients and models changed through
        another process, one stale command per batch would make every batch go one by
        one (docs/benchmarks.md)."""
        try:
            ids = self._insert_batch(batch)
        except IntegrityError as conflict:
            if len(batch) == 1:
                _resolve(batch[0], error=conflict)
                return
            middle = len(batch) // 2
            self._commit(batch[:middle])
            self._commit(batch[middle:])
            return
        except Exception as error:
            for pending in batch:
                _resolve(pending, error=error)
            return
        offset = 0
        for pending in batch:
            count = len(pending.stored_events)
            _resolve(pending, positions=ids[offset : offset + count])
            offset += count

    def _insert_batch(self, batch: list[_Pending]) -> Sequence[int]:
        events = [event for pending in batch for event in pending.stored_events]
        records = [record for pending in batch for record in pending.idempotency]
        return list(self._insert_now(events, records) or [])

    def _insert_now(
        self, events: Sequence[StoredEvent], records: Sequence[Any]
    ) -> Sequence[int] | None:
        """One transaction; a recorder may override how failures are retried."""
        return super().insert_events(events, idempotency=records)  # type: ignore[misc,no-any-return]


def _live(pending: list[_Pending]) -> list[_Pending]:
    """Claim the futures; a caller that was cancelled already has its answer."""
    return [item for item in pending if item.result.set_running_or_notify_cancel()]


def _resolve(
    pending: _Pending,
    *,
    positions: Sequence[int] | None = None,
    error: BaseException | None = None,
) -> None:
    if pending.result.done():
        return
    if error is not None:
        pending.result.set_exception(error)
    else:
        pending.result.set_result(list(positions or []))


_start_lock = threading.Lock()
