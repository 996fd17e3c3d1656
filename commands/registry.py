"""The eventsourcing application: loads AIModel aggregates and appends their events.

Loading is the library's ``repository.get``. Appending goes to the recorder's
``submit`` (group commit) instead of ``Application.save``: ``save`` blocks its
thread until the commit, and in the API that meant a thread per in-flight
command (and GIL contention between them); ``submit`` returns a future that
the event loop awaits, so a command on a cached model never leaves the loop
until its commit (docs/benchmarks.md). Both paths append with the idempotency
record in the same transaction and translate store errors once.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from anyio import to_thread
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.utils import Environment, EnvType

from commands.errors import ConcurrentChange, VersionMismatch
from commands.ports import IdempotencyRecord, StoreRecorder, StoreUnavailable
from write_model.ended_session import EndedSession
from write_model.errors import ModelNotFound
from write_model.metric_definition import MetricDefinition
from write_model.model import AIModel
from write_model.values import EventMetadata

log = logging.getLogger("modelledger.store")


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
    projects: frozenset[str] | None = None  # the projects the sender may change; None: all
    source: dict[str, Any] | None = None  # an import's: where the fact comes from
    at: datetime | None = None  # an import's: record at this time instead of now

    @property
    def sender(self) -> str:
        """The actor and what it may change: two keys of one name but other scopes
        are other senders (a retry of one is never answered for the other)."""
        scope = ",".join(sorted(self.projects)) if self.projects is not None else "*"
        return f"{self.actor}\x00{scope}"

    @property
    def meta(self) -> EventMetadata:
        return EventMetadata(self.actor, self.correlation_id, self.command_id, self.source, self.at)


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

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Only what bootstrap passes: eventsourcing would also read the process
        # environment, where a stray POSTGRES_* or AGGREGATE_CACHE_* variable
        # could silently change how the store behaves.
        return Environment(name, dict(env or {}))

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        # Called with the new position after each append in this process
        # (projections in the same process look at once instead of polling).
        self.doorbells: list[Callable[[int], None]] = []
        self.events_appended = 0  # by this process, for /metrics

    @property
    def store(self) -> StoreRecorder:
        """The recorder, with what ours add to the library's (commands.ports)."""
        return cast(StoreRecorder, self.recorder)

    def ping(self) -> None:
        """One look at the store, answered within the connect timeout (health checks)."""
        with store_errors():
            self.store.ping()

    # -- loading --------------------------------------------------------------

    def load(self, model_id: UUID, ctx: CommandContext) -> AIModel:
        with store_errors():
            try:
                # The cached object itself: copied below, as load_async copies it.
                model: Any = self.repository.get(model_id, deepcopy_from_cache=False)
            except AggregateNotFoundError:
                model = None
        if not isinstance(model, AIModel):  # an API key's id is no model's
            raise ModelNotFound(f"model {model_id} not found", field="model_id")
        return _checked(private_copy(model), ctx)

    async def load_async(self, model_id: UUID, ctx: CommandContext) -> AIModel:
        """From the cache on the event loop (no I/O), else from the store in a thread."""
        cache = self.repository.cache
        try:
            cached = cache.get(model_id) if cache is not None else None
        except KeyError:
            cached = None
        if isinstance(cached, AIModel):
            return _checked(private_copy(cached), ctx)
        return await to_thread.run_sync(self.load, model_id, ctx)

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

    def forget_older(self, changes: Iterable[tuple[UUID, int]]) -> None:
        """Drop cached models that changed beyond the version cached (``changes``: model
        and version, from the log): other processes' changes. Its next command on them
        would otherwise find out only by losing a race with the store: with several API
        processes under load, a stream of conflicts and retries (docs/benchmarks.md)."""
        cache = self.repository.cache
        for model_id, version in changes:
            cached = _cached_version(cache, model_id)
            if cached is not None and cached < version:
                self.forget(model_id)

    # -- appending ------------------------------------------------------------

    def commit(self, model: Aggregate, ctx: CommandContext, **details: Any) -> CommandResult:
        """Append the model's new events (with the idempotency record, atomically)."""
        current = None if model.pending_events else self._current_position(model)
        if current is not None and ctx.idempotency is None:  # nothing at all to write
            return CommandResult(str(model.id), model.version, current, details)
        future = self._submit(model, ctx, details)
        with store_errors():
            try:
                positions = future.result()
            except IntegrityError:
                raise _conflict(model) from None
        if current is not None:  # nothing was appended: the model stands where it stood
            return CommandResult(str(model.id), model.version, current, details)
        return self._committed(model, positions, details)

    async def commit_async(
        self, model: Aggregate, ctx: CommandContext, **details: Any
    ) -> CommandResult:
        if not model.pending_events:  # rare, and it reads the store: in a thread
            return await to_thread.run_sync(lambda: self.commit(model, ctx, **details))
        future = self._submit(model, ctx, details)
        with store_errors():
            try:
                positions = await asyncio.wrap_future(future)
            except IntegrityError:
                raise _conflict(model) from None
        return self._committed(model, positions, details)

    def _current_position(self, model: Aggregate) -> int:
        """A decision that changed nothing was not checked by an append: check it here,
        and answer with the position of the model's last event."""
        with store_errors():
            history = self.store.select_history(model.id)
        if not history or history[-1][1].originator_version != model.version:
            raise ConcurrentChange(
                "the model changed while the command was decided", field="model_id"
            )
        return history[-1][0]

    def _submit(
        self, model: Aggregate, ctx: CommandContext, details: dict[str, Any]
    ) -> Future[Sequence[int]]:
        events = model.collect_events()
        version = events[-1].originator_version if events else model.version
        records = []
        if ctx.idempotency is not None:
            # Kept even when nothing changed, so a late retry changes nothing either.
            body = {"id": str(model.id), "version": version, **details}
            key, fingerprint = ctx.idempotency.key, ctx.idempotency.fingerprint
            records.append(IdempotencyRecord(key, fingerprint, str(model.id), version, body))
        stored = [self.mapper.to_stored_event(event) for event in events]
        return self.store.submit(stored, records)

    def _committed(
        self, model: Aggregate, positions: Sequence[int], details: dict[str, Any]
    ) -> CommandResult:
        if self.repository.cache is not None:
            self.repository.cache.put(model.id, model)  # as Application.save does
        position = max(positions)
        self.events_appended += len(positions)
        for ring in self.doorbells:
            ring(position)
        return CommandResult(str(model.id), model.version, position, details)


def private_copy(model: AIModel) -> AIModel:
    """A copy a command may change without touching the cached model. Through pickle,
    which takes about half deepcopy's time: a copy is made for every command, so its
    cost shows under a stream of trainings (docs/benchmarks.md)."""
    copied: AIModel = pickle.loads(pickle.dumps(model, pickle.HIGHEST_PROTOCOL))
    return copied


def _cached_version(cache: Any, aggregate_id: Any) -> int | None:
    """The version of the model the cache holds (None: not cached, nothing to drop)."""
    if cache is None:
        return None
    try:
        return int(cache.get(aggregate_id).version)
    except KeyError:
        return None


def _checked(model: AIModel, ctx: CommandContext) -> AIModel:
    if ctx.projects is not None and model.project not in ctx.projects:
        # Not 403: whether a model exists in another project is not the sender's to know.
        raise ModelNotFound(f"model {model.id} not found", field="model_id")
    if ctx.expected_version is not None and ctx.expected_version != model.version:
        raise VersionMismatch(
            f"If-Match expected version {ctx.expected_version}, "
            f"the model is at version {model.version}",
            field="If-Match",
        )
    return model


def _conflict(model: Aggregate) -> ConcurrentChange:
    what, field = (
        ("model", "model_id")
        if isinstance(model, AIModel)
        else ("metric definition", "name")
        if isinstance(model, MetricDefinition)
        else ("session", "session")
        if isinstance(model, EndedSession)
        else ("key", "key_id")
    )
    if model.version == 1:
        return ConcurrentChange(f"a {what} with this id was created concurrently", field=field)
    return ConcurrentChange(
        f"the {what} was changed by another request; reload and retry", field=field
    )


@contextmanager
def store_errors() -> Iterator[None]:
    """Driver error -> store error (or a command's conflict), once, for every use of the
    event store."""
    try:
        yield
    except IntegrityError:
        raise
    except PersistenceError as error:
        # The driver's words stay in the log; clients get a stable message.
        log.warning("event store unavailable: %s", error)
        raise StoreUnavailable("the event store is unavailable; retry shortly") from error
