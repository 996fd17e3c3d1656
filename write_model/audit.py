"""Who caused each event and why: the audit trail's metadata on every event.

A command method receives its ``EventMetadata`` and records its events inside
``acting(meta)``; ``Audited`` adds the actor, correlation and causation to each
event it creates or triggers in there, so no event method names them. A context
variable rather than an attribute: a model's state (compared, cached, pickled)
holds nothing of the command that changed it, and creation has no instance yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import field
from datetime import datetime
from typing import Any, Self

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate

from write_model.values import EventMetadata, instant

_ACTING: ContextVar[EventMetadata] = ContextVar("acting")


@contextmanager
def acting(meta: EventMetadata) -> Iterator[None]:
    """Every event recorded inside carries ``meta``; nested uses restore the outer one."""
    token = _ACTING.set(meta)
    try:
        yield
    finally:
        _ACTING.reset(token)


def _metadata() -> dict[str, Any]:
    try:
        return _ACTING.get().as_event_fields()
    except LookupError:
        raise RuntimeError("an event was recorded outside acting(meta): who caused it?") from None


class Audited(Aggregate):
    """An aggregate whose every event says who caused it and why."""

    class Event(Aggregate.Event):
        actor: str
        correlation_id: str
        causation_id: str  # the command's id
        # Where an imported fact comes from (commands/mlflow_import/), else None.
        source: dict[str, Any] | None = field(default=None, kw_only=True)

        @property
        def when(self) -> str:
            return instant(self.timestamp)

    @classmethod
    def _create(
        cls,
        event_class: type[CanInitAggregate[Any]],
        *,
        id: Any = None,  # the library's name
        **kwargs: Any,
    ) -> Self:
        created = super()._create(event_class, id=id, **{**kwargs, **_metadata()})
        _store_no_empty_source(created._pending_events[-1])
        return created

    def trigger_event(self, event_class: type[CanMutateAggregate[Any]], **kwargs: Any) -> None:
        fields = {**kwargs, **_metadata()}
        if fields.get("timestamp") is not None:  # an import's past: never before the last event
            fields["timestamp"] = max(fields["timestamp"], self.modified_on)
        super().trigger_event(event_class, **fields)
        _store_no_empty_source(self._pending_events[-1])


def _store_no_empty_source(event: Any) -> None:
    """An event with no source stores none, as every event did before imports had one:
    the class's default reads as None, and stored events stay as they were."""
    if event.source is None:
        vars(event).pop("source", None)


def when(timestamp: datetime | None) -> str:
    """An event method's ``timestamp`` (its event's own, which the library passes to the
    body) as text. None is only the default its callers leave for the library to stamp."""
    assert timestamp is not None, "the library passes the event's timestamp"
    return instant(timestamp)
