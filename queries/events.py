"""The global event feed: every stored event in log order, from the log itself.

Filters by type go to the store (``select_notifications`` selects by topic);
actor, time and what the reader may see (``FeedView``) are checked on the
decoded events. So that a sparse filter
never makes one request read the whole log, a request examines at most
``MAX_SCANNED`` events and answers with what it found and ``next_after``, the
position to go on from; ``at_head`` says nothing more was stored yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from eventsourcing.utils import get_topic

from queries.answers import Answer
from queries.messages import ListEvents
from queries.models import history_item
from queries.ports import EventLog
from queries.visibility import ModelProjects, Projects
from read_model.encoding import json_bytes, json_text
from write_model.api_key import KEY_EVENT_TYPES, ApiKey
from write_model.ended_session import SESSION_EVENT_TYPES, EndedSession
from write_model.metric_definition import DEFINITION_EVENT_TYPES, MetricDefinition
from write_model.model import EVENT_TYPES, AIModel
from write_model.webhook import WEBHOOK_EVENT_TYPES, Webhook

MAX_SCANNED = 10_000
SCAN_PAGE = 1_000
TOPICS = {
    cls.__name__: get_topic(cls)
    for cls in (
        *EVENT_TYPES,
        *DEFINITION_EVENT_TYPES,
        *KEY_EVENT_TYPES,
        *SESSION_EVENT_TYPES,
        *WEBHOOK_EVENT_TYPES,
    )
}
# What every reader may see: models' events (those of its projects) and metric definitions.
PUBLIC_TOPICS = [get_topic(cls) for cls in (*EVENT_TYPES, *DEFINITION_EVENT_TYPES)]
# Not even a key's hash, nor a webhook secret's ciphertext, leaves the store.
SECRET_FIELDS = frozenset({"secret_sha256", "secret"})


@dataclass(frozen=True)
class FeedView:
    """What the reader may see: the projects in view, and key management and sign-outs
    (admins)."""

    visible: Projects
    keys: bool
    projects: ModelProjects

    def shows(self, event: Any) -> bool:
        if isinstance(event, ApiKey.Event | EndedSession.Event | Webhook.Event):
            return self.keys
        if self.visible is None or isinstance(event, MetricDefinition.Event):
            return True  # (a definition is registry-wide: no project's)
        if isinstance(event, AIModel.ModelCreated):
            self.projects.remember(event.originator_id, event.project)
            return event.project in self.visible
        return self.projects.project_of(event.originator_id) in self.visible


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_after: int
    at_head: bool

    def body(self) -> dict[str, Any]:
        return {"items": self.items, "next_after": self.next_after, "at_head": self.at_head}

    def answer(self) -> Answer:
        return Answer(json_bytes(self.body()), self.next_after)

    def texts(self) -> list[tuple[dict[str, Any], str]]:
        """Each item with its JSON text (a server-sent event's data)."""
        return [(item, json_text(item)) for item in self.items]


def feed_item(position: int, event: Any) -> dict[str, Any]:
    if isinstance(event, ApiKey.Event):
        item = history_item(position, event)
        item["data"] = {k: v for k, v in item["data"].items() if k not in SECRET_FIELDS}
        return {"key_id": str(event.originator_id), **item}
    if isinstance(event, Webhook.Event):
        item = history_item(position, event)
        item["data"] = {k: v for k, v in item["data"].items() if k not in SECRET_FIELDS}
        return {"webhook_id": str(event.originator_id), **item}
    if isinstance(event, EndedSession.Event):
        ended = {"session_id": str(event.originator_id), "key_id": cast(Any, event).key_id}
        return {**ended, **history_item(position, event)}
    if isinstance(event, MetricDefinition.Event):
        return {"metric": cast(Any, event).name, **history_item(position, event)}
    return {"model_id": str(event.originator_id), **history_item(position, event)}


def _wanted(query: ListEvents, view: FeedView, event: Any) -> bool:
    return (
        view.shows(event)
        and (query.actor is None or event.actor == query.actor)
        and (query.since is None or event.timestamp >= query.since)
        and (query.until is None or event.timestamp <= query.until)
    )


def list_events(event_log: EventLog, query: ListEvents, view: FeedView) -> FeedPage:
    if query.model_id is not None:
        return _model_events(event_log, query, view)
    return _scan(event_log, query, view)


def _scan(event_log: EventLog, query: ListEvents, view: FeedView) -> FeedPage:
    # Readers who may not see key management ask the store for the models' events only.
    topics = [TOPICS[name] for name in query.type] or ([] if view.keys else PUBLIC_TOPICS)
    filtered = (
        query.actor is not None
        or query.since is not None
        or query.until is not None
        or view.visible is not None
        or (bool(query.type) and not view.keys)
    )
    items: list[dict[str, Any]] = []
    after, scanned = query.after, 0
    while len(items) < query.limit and scanned < MAX_SCANNED:
        want = SCAN_PAGE if filtered else query.limit - len(items)
        page = event_log.page(after, want, topics=topics)
        for notification in page:
            after, scanned = notification.id, scanned + 1
            event = event_log.decode(notification)
            if _wanted(query, view, event):
                items.append(feed_item(notification.id, event))
                if len(items) == query.limit:
                    return FeedPage(items, after, at_head=False)
        if len(page) < want:
            return FeedPage(items, after, at_head=True)
    return FeedPage(items, after, at_head=False)


def _model_events(event_log: EventLog, query: ListEvents, view: FeedView) -> FeedPage:
    """One model's events come from its own history (an indexed read), not a scan."""
    assert query.model_id is not None
    rows = event_log.stored_history(query.model_id)
    events = [(position, event_log.decode(stored)) for position, stored in rows]
    if not events or not view.shows(events[0][1]):
        # Unseen is the same answer as unknown: not even where its last event stands.
        return FeedPage([], query.after, at_head=True)
    types = set(query.type)
    items: list[dict[str, Any]] = []
    for position, event in events:
        if position <= query.after:
            continue
        if (not types or type(event).__name__ in types) and _wanted(query, view, event):
            items.append(feed_item(position, event))
            if len(items) == query.limit:
                return FeedPage(items, position, at_head=False)
    last = rows[-1][0] if rows else query.after
    return FeedPage(items, max(last, query.after), at_head=True)
