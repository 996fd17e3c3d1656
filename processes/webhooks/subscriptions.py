"""The subscriptions as the deliverer knows them: folded from the log's Webhook events,
in log order, so each event is matched against the subscriptions as they stood when
it was recorded (one created at position P gets the events after P)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from queries.ports import EventLog
from queries.visibility import ModelProjects
from write_model.metric_definition import MetricDefinition
from write_model.model import AIModel
from write_model.webhook import DELIVERED_TYPES, WEBHOOK_EVENT_TYPES, Webhook

WEBHOOK_TOPICS = [get_topic(cls) for cls in WEBHOOK_EVENT_TYPES]
SCAN_PAGE = 1000


@dataclass
class Subscription:
    id: str
    url: str
    event_types: frozenset[str] | None
    projects: frozenset[str] | None
    secret: str  # sealed
    previous_secret: str | None = None
    previous_until: datetime | None = None
    enabled: bool = True

    def wants(self, event_type: str, project: str | None) -> bool:
        """Registry-wide events (``project`` None: a metric's definition) go only to
        subscriptions without a project filter."""
        return (self.event_types is None or event_type in self.event_types) and (
            self.projects is None or project in self.projects
        )

    def secrets_at(self, moment: datetime) -> list[str]:
        """The sealed secrets that sign at ``moment``, newest first."""
        overlap = self.previous_until is not None and moment < self.previous_until
        return [self.secret, *([self.previous_secret] if overlap and self.previous_secret else [])]


@dataclass
class Subscriptions:
    event_log: EventLog
    projects: ModelProjects
    by_id: dict[str, Subscription] = field(default_factory=dict)
    folded_to: int = 0

    def catch_up(self, position: int) -> None:
        """Fold the Webhook events up to ``position`` (a scan of their topics only)."""
        while self.folded_to < position:
            page = self.event_log.page(
                self.folded_to, SCAN_PAGE, until=position, topics=WEBHOOK_TOPICS
            )
            for notification in page:
                self.apply(self.event_log.decode(notification))
            self.folded_to = page[-1].id if len(page) == SCAN_PAGE else position

    def reset(self) -> None:
        self.by_id, self.folded_to = {}, 0

    def kept(self, page: Sequence[Notification]) -> tuple[dict[str, Subscription], int]:
        """What ``restore`` takes back to, before ``page`` is applied (a copy only when
        the page changes a subscription)."""
        if any(n.topic in WEBHOOK_TOPICS for n in page):
            return {k: replace(v) for k, v in self.by_id.items()}, self.folded_to
        return self.by_id, self.folded_to

    def restore(self, kept: tuple[dict[str, Subscription], int]) -> None:
        self.by_id, self.folded_to = kept

    def apply(self, event: Any) -> None:
        """Take in a Webhook event."""
        key = str(event.originator_id)
        if isinstance(event, Webhook.WebhookCreated):
            self.by_id[key] = Subscription(
                key, event.url, _set(event.event_types), _set(event.projects), event.secret
            )
            return
        found = self.by_id.get(key)
        if found is None:
            return
        if isinstance(event, Webhook.WebhookUpdated):
            for name, value in event.changes.items():
                setattr(found, name, _set(value) if name in ("event_types", "projects") else value)
        elif isinstance(event, Webhook.WebhookSecretRotated):
            found.previous_secret, found.secret = found.secret, event.secret
            found.previous_until = event.previous_until
        elif isinstance(event, Webhook.WebhookEnabled):
            found.enabled = True
        elif isinstance(event, Webhook.WebhookDisabled):
            found.enabled = False
        elif isinstance(event, Webhook.WebhookDeleted):
            del self.by_id[key]

    def wanting(self, event: Any) -> list[Subscription]:
        """The subscriptions this event goes to (deliverable events only; a disabled
        subscription's are kept for when it is enabled again)."""
        name = type(event).__name__
        if name not in DELIVERED_TYPES or not self.by_id:
            return []
        project = self.project_of(event)
        return [s for s in self.by_id.values() if s.wants(name, project)]

    def project_of(self, event: Any) -> str | None:
        """A model's project; None for what is registry-wide (a metric's definition)."""
        if isinstance(event, MetricDefinition.Event):
            return None
        if isinstance(event, AIModel.ModelCreated):
            self.projects.remember(event.originator_id, event.project)
            return str(event.project)
        return self.projects.project_of(UUID(str(event.originator_id)))

    def ids(self) -> Sequence[str]:
        return list(self.by_id)


def _set(values: list[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values is not None else None
