"""In-memory event store for unit tests: eventsourcing's POPO recorder plus
idempotency keys and history with positions."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from commands.ports import IdempotencyRecord, StoredResponse


class LedgerMemoryRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._idempotency: dict[str, IdempotencyRecord] = {}

    def _insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        records: Sequence[IdempotencyRecord] = kwargs.get("idempotency", ())
        with self._database_lock:
            keys = [r.key for r in records]
            if len(set(keys)) < len(keys) or any(key in self._idempotency for key in keys):
                raise IntegrityError("idempotency key already recorded")
            notification_ids = super()._insert_events(stored_events, **kwargs)
            self._idempotency.update((r.key, r) for r in records)
            return notification_ids

    def submit(
        self, stored_events: Sequence[StoredEvent], idempotency: Sequence[IdempotencyRecord]
    ) -> Future[Sequence[int]]:
        """Memory needs no group commit: insert now, hand back a finished future."""
        result: Future[Sequence[int]] = Future()
        try:
            result.set_result(
                list(self.insert_events(stored_events, idempotency=idempotency) or [])
            )
        except Exception as error:
            result.set_exception(error)
        return result

    def find_idempotency(self, key: str) -> StoredResponse | None:
        record = self._idempotency.get(key)
        if record is None:
            return None
        position = next(
            (
                position
                for position, event in self.select_history(UUID(record.model_id))
                if event.originator_version == record.model_version
            ),
            None,
        )
        return StoredResponse(record=record, position=position)

    def select_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]:
        with self._database_lock:
            return [
                (index + 1, event)
                for index, event in enumerate(self._stored_events)
                if event.originator_id == originator_id
            ]

    def last_change(self, originator_id: UUID) -> tuple[int, int] | None:
        history = self.select_history(originator_id)
        return (history[-1][1].originator_version, history[-1][0]) if history else None

    def ping(self) -> None:
        return None


class LedgerMemoryFactory(POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return LedgerMemoryRecorder()
