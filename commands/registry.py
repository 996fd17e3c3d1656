"""The eventsourcing application: loads and saves AIModel aggregates.

Handlers use it as the library gives it (``repository.get`` and ``save``);
``load`` and ``commit`` only add what every command needs around them:
If-Match, idempotency records, and translating store errors once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent

from commands.errors import StoreUnavailable
from commands.idempotency import IdempotencyRecord, StoredResponse
from write_model.errors import ConcurrentChange, ModelNotFound, VersionMismatch
from write_model.model import AIModel
from write_model.values import EventMetadata


class LedgerRecorder(Protocol):
    """What our recorders add to eventsourcing's (SQLite, PostgreSQL, memory)."""

    def find_idempotency(self, key: str) -> StoredResponse | None: ...

    def select_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]: ...

    def ping(self) -> None: ...


@dataclass(frozen=True)
class IdempotencyRequest:
    key: str
    fingerprint: str


@dataclass(frozen=True)
class CommandContext:
    """Who sends the command, and the caller's concurrency and retry controls."""

    actor: str = "anonymous"
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    expected_version: int | None = None
    idempotency: IdempotencyRequest | None = None

    @property
    def meta(self) -> EventMetadata:
        return EventMetadata(self.actor, self.correlation_id, self.command_id)


@dataclass(frozen=True)
class CommandResult:
    id: str
    version: int
    position: int | None
    details: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "position": self.position, **self.details}


class ModelRegistry(Application[UUID]):
    name = "ModelRegistry"

    @property
    def ledger(self) -> LedgerRecorder:
        return cast(LedgerRecorder, self.recorder)

    def load(self, model_id: UUID, ctx: CommandContext) -> AIModel:
        with store_errors():
            try:
                model = cast(AIModel, self.repository.get(model_id))
            except AggregateNotFoundError:
                raise ModelNotFound(f"model {model_id} not found") from None
        if ctx.expected_version is not None and ctx.expected_version != model.version:
            raise VersionMismatch(
                f"If-Match expected version {ctx.expected_version}, "
                f"the model is at version {model.version}",
                field="If-Match",
            )
        return model

    def commit(self, model: AIModel, ctx: CommandContext, **details: Any) -> CommandResult:
        """Save the model's new events (with the idempotency record, atomically)."""
        version = (
            model.pending_events[-1].originator_version if model.pending_events else (model.version)
        )
        records = []
        if ctx.idempotency is not None:
            body = {"id": str(model.id), "version": version, **details}
            records.append(
                IdempotencyRecord(
                    key=ctx.idempotency.key,
                    fingerprint=ctx.idempotency.fingerprint,
                    model_id=str(model.id),
                    model_version=version,
                    body=body,
                )
            )
        if not model.pending_events:  # nothing changed: answer with where it stands
            if records:  # ...and remember the answer, so a late retry changes nothing
                with store_errors():
                    try:
                        self.recorder.insert_events([], idempotency=records)
                    except IntegrityError:
                        raise ConcurrentChange("a retry of this request is in flight") from None
            return CommandResult(str(model.id), model.version, self.position_of(model), details)
        with store_errors():
            try:
                recordings = self.save(model, idempotency=records)
            except IntegrityError:
                raise ConcurrentChange(
                    "the model was changed by another request; reload and retry"
                ) from None
        position = max((r.notification.id for r in recordings), default=None)
        return CommandResult(str(model.id), model.version, position, details)

    def forget(self, model_id: UUID) -> bool:
        """Drop a cached model (it may be stale); True if there was one."""
        cache = self.repository.cache
        if cache is None:
            return False
        try:
            cache.get(model_id, evict=True)
        except KeyError:
            return False
        return True

    def position_of(self, model: AIModel) -> int | None:
        with store_errors():
            history = self.ledger.select_history(model.id)
        return history[-1][0] if history else None


@contextmanager
def store_errors() -> Iterator[None]:
    """Store error -> domain error, once, for every use of the event store."""
    try:
        yield
    except IntegrityError:
        raise
    except PersistenceError as error:
        raise StoreUnavailable(f"the event store is unavailable: {error}") from error
