"""The global event feed: every stored event in log order, from the log itself.

Filters by type go to the store (``select_notifications`` selects by topic);
actor and time are checked on the decoded events. So that a sparse filter
never makes one request read the whole log, a request examines at most
``MAX_SCANNED`` events and answers with what it found and ``next_after``, the
position to go on from; ``at_head`` says nothing more was stored yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.utils import get_topic

from commands.registry import ModelRegistry, store_errors
from queries.messages import ListEvents
from queries.models import history_item
from write_model.model import EVENT_TYPES

MAX_SCANNED = 10_000
SCAN_PAGE = 1_000
TOPICS = {cls.__name__: get_topic(cls) for cls in EVENT_TYPES}


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_after: int
    at_head: bool

    def body(self) -> dict[str, Any]:
        return {"items": self.items, "next_after": self.next_after, "at_head": self.at_head}


def feed_item(position: int, event: Any) -> dict[str, Any]:
    return {"model_id": str(event.originator_id), **history_item(position, event)}


def _wanted(query: ListEvents, event: Any) -> bool:
    return (
        (query.actor is None or event.actor == query.actor)
        and (query.since is None or event.timestamp >= query.since)
        and (query.until is None or event.timestamp <= query.until)
    )


def list_events(registry: ModelRegistry, query: ListEvents) -> FeedPage:
    if query.model_id is not None:
        return _model_events(registry, query)
    with store_errors():
        return _scan(registry, query)


def _scan(registry: ModelRegistry, query: ListEvents) -> FeedPage:
    topics = [TOPICS[name] for name in query.type]
    filtered = query.actor is not None or query.since is not None or query.until is not None
    items: list[dict[str, Any]] = []
    after, scanned = query.after, 0
    while len(items) < query.limit and scanned < MAX_SCANNED:
        want = SCAN_PAGE if filtered else query.limit - len(items)
        page = registry.recorder.select_notifications(
            start=after, limit=want, topics=topics, inclusive_of_start=False
        )
        for notification in page:
            after, scanned = notification.id, scanned + 1
            event = registry.mapper.to_domain_event(notification)
            if _wanted(query, event):
                items.append(feed_item(notification.id, event))
                if len(items) == query.limit:
                    return FeedPage(items, after, at_head=False)
        if len(page) < want:
            return FeedPage(items, after, at_head=True)
    return FeedPage(items, after, at_head=False)


def _model_events(registry: ModelRegistry, query: ListEvents) -> FeedPage:
    """One model's events come from its own history (an indexed read), not a scan."""
    assert query.model_id is not None
    with store_errors():
        rows = registry.ledger.select_history(query.model_id)
    types = set(query.type)
    items: list[dict[str, Any]] = []
    for position, stored in rows:
        if position <= query.after:
            continue
        event = registry.mapper.to_domain_event(stored)
        if (not types or type(event).__name__ in types) and _wanted(query, event):
            items.append(feed_item(position, event))
            if len(items) == query.limit:
                return FeedPage(items, position, at_head=False)
    last = rows[-1][0] if rows else query.after
    return FeedPage(items, max(last, query.after), at_head=True)
