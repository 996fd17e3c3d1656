"""Group commit: concurrent commands' events share one transaction.

Each eventsourcing ``insert_events`` is its own transaction; on PostgreSQL it
also takes an EXCLUSIVE table lock, so concurrent commands queue behind each
other's lock, commit and fsync. Measured in bench/commands.py, batching the
commands that arrive while one commit is in flight into the next commit raises
throughput several times. The library has no such option, hence this mixin.

A batch that hits a uniqueness conflict is retried one command at a time, so
one lost race or duplicate never fails the other commands of its batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent

MAX_BATCH_COMMANDS = 256


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
        if self.group_commit_enabled:
            self._commit_queue().put(pending)
        else:
            self._commit([pending])
        return pending.result

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc,no-any-return]
        return self.submit(stored_events, kwargs.get("idempotency", ())).result()

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
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH_COMMANDS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        if len(batch) > 1:
            try:
                ids = self._insert_batch(batch)
            except IntegrityError:
                pass  # some command of the batch conflicts: find which, one by one
            except BaseException as error:
                for pending in batch:
                    pending.result.set_exception(error)
                return
            else:
                offset = 0
                for pending in batch:
                    count = len(pending.stored_events)
                    pending.result.set_result(ids[offset : offset + count])
                    offset += count
                return
        for pending in batch:
            try:
                pending.result.set_result(self._insert_batch([pending]))
            except BaseException as error:
                pending.result.set_exception(error)

    def _insert_batch(self, batch: list[_Pending]) -> Sequence[int]:
        events = [event for pending in batch for event in pending.stored_events]
        records = [record for pending in batch for record in pending.idempotency]
        return list(self._insert_now(events, records) or [])

    def _insert_now(
        self, events: Sequence[StoredEvent], records: Sequence[Any]
    ) -> Sequence[int] | None:
        """One transaction; a recorder may override how failures are retried."""
        return super().insert_events(events, idempotency=records)  # type: ignore[misc,no-any-return]

    def stop_group_commit(self) -> None:
        existing = getattr(self, "_queue", None)
        if existing is not None:
            existing.put(None)
            self._committer.join(timeout=10)


_start_lock = threading.Lock()
