"""The Webhook aggregate: a subscription of an HTTPS endpoint to the log's events.

Its signing secret is kept in the log only as ciphertext (``adapters/secret_box.py``):
the subscriber sees it once, when it is made or rotated. After a rotation both secrets
sign deliveries until ``previous_until``, so a receiver can change its secret without
refusing anything. These events are for admins: never delivered, never published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from eventsourcing.domain import Aggregate, event

from write_model.audit import Audited, acting
from write_model.errors import InvalidValue, WebhookDeleted
from write_model.metric_definition import DEFINITION_EVENT_TYPES
from write_model.model import EVENT_TYPES
from write_model.values import EventMetadata, has_control_characters

MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 1000
CHANGEABLE = frozenset({"url", "event_types", "projects", "description"})
# What is delivered: the registry's events (models' and metric definitions'), never
# those of keys, sessions or webhooks themselves.
DELIVERED_TYPES = frozenset(cls.__name__ for cls in (*EVENT_TYPES, *DEFINITION_EVENT_TYPES))


def checked_url(url: str) -> str:
    """An absolute http(s) URL with a host (where it may point is the deliverer's check,
    made on the address it connects to)."""
    if not isinstance(url, str):
        raise InvalidValue("url must be an absolute http(s) URL", field="url")
    parts = urlsplit(url)
    if (
        len(url) > MAX_URL_LENGTH
        or has_control_characters(url)
        or parts.scheme not in ("https", "http")
        or not parts.hostname
    ):
        raise InvalidValue(
            f"url must be an absolute http(s) URL of at most {MAX_URL_LENGTH} characters",
            field="url",
        )
    return url


class Webhook(Audited):
    class WebhookCreated(Audited.Event, Aggregate.Created):
        """An endpoint subscribes to the log: every event, or those of ``event_types``
        (names in the catalogue) and of ``projects`` (null: all). ``secret`` is the
        signing secret's ciphertext."""

        url: str
        event_types: list[str] | None
        projects: list[str] | None
        description: str
        secret: str

    class WebhookUpdated(Audited.Event):
        """Its URL, filters or description changed (``changes``: the new values)."""

        changes: dict[str, Any]

    class WebhookSecretRotated(Audited.Event):
        """A new signing secret (ciphertext); the previous one signs too until then."""

        secret: str
        previous_until: datetime

    class WebhookEnabled(Audited.Event):
        """Deliveries go on from where they stopped."""

    class WebhookDisabled(Audited.Event):
        """Deliveries stop (an admin's choice, a 410 from the endpoint, or a delivery
        failing past the retry schedule: ``reason`` says which)."""

        reason: str

    class WebhookDeleted(Audited.Event):
        """The subscription ends for good."""

    @event(WebhookCreated)
    def __init__(
        self,
        *,
        url: str,
        event_types: list[str] | None,
        projects: list[str] | None,
        description: str,
        secret: str,
    ) -> None:
        self.url, self.event_types, self.projects = url, event_types, projects
        self.description, self.secret = description, secret
        self.previous_secret: str | None = None
        self.previous_until: datetime | None = None
        self.enabled, self.disabled_reason, self.deleted = True, "", False

    @classmethod
    def subscribe(cls, *, sealed_secret: str, meta: EventMetadata, **fields: Any) -> Webhook:
        fields = _checked(fields, creating=True)
        with acting(meta):
            return cls._create(cls.WebhookCreated, secret=sealed_secret, **fields)

    def update(self, changes: dict[str, Any], meta: EventMetadata) -> bool:
        """Change what differs; False when nothing did (no event)."""
        self._not_deleted()
        differing = {k: v for k, v in _checked(changes).items() if getattr(self, k) != v}
        if not differing:
            return False
        with acting(meta):
            self._updated(changes=differing)
        return True

    def rotate_secret(
        self, sealed_secret: str, previous_until: datetime, meta: EventMetadata
    ) -> None:
        self._not_deleted()
        with acting(meta):
            self._rotated(secret=sealed_secret, previous_until=previous_until)

    def enable(self, meta: EventMetadata) -> bool:
        self._not_deleted()
        if self.enabled:
            return False
        with acting(meta):
            self._enabled()
        return True

    def disable(self, reason: str, meta: EventMetadata) -> bool:
        self._not_deleted()
        if not self.enabled:
            return False
        with acting(meta):
            self._disabled(reason=reason)
        return True

    def delete(self, meta: EventMetadata) -> None:
        self._not_deleted()
        with acting(meta):
            self._deleted()

    def secrets_at(self, moment: datetime) -> list[str]:
        """The sealed secrets that sign a delivery made at ``moment``, newest first."""
        overlap = self.previous_until is not None and moment < self.previous_until
        return [self.secret, *([self.previous_secret] if overlap and self.previous_secret else [])]

    def _not_deleted(self) -> None:
        if self.deleted:
            raise WebhookDeleted(f"webhook {self.id} was deleted", field="webhook_id")

    @event(WebhookUpdated)
    def _updated(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    @event(WebhookSecretRotated)
    def _rotated(self, secret: str, previous_until: datetime) -> None:
        self.previous_secret, self.previous_until, self.secret = self.secret, previous_until, secret

    @event(WebhookEnabled)
    def _enabled(self) -> None:
        self.enabled, self.disabled_reason = True, ""

    @event(WebhookDisabled)
    def _disabled(self, reason: str) -> None:
        self.enabled, self.disabled_reason = False, reason

    @event(WebhookDeleted)
    def _deleted(self) -> None:
        self.deleted, self.enabled = True, False


def _checked(fields: dict[str, Any], creating: bool = False) -> dict[str, Any]:
    unknown = set(fields) - CHANGEABLE
    if unknown:
        raise InvalidValue(
            f"a webhook has no field {sorted(unknown)[0]!r}", field=sorted(unknown)[0]
        )
    if creating or "url" in fields:
        fields["url"] = checked_url(fields["url"])
    if "description" in fields and fields["description"] is None:
        fields["description"] = ""  # (null clears it, as event_types and projects)
    description = fields.get("description")
    if description is not None and (
        len(description) > MAX_DESCRIPTION_LENGTH or has_control_characters(description)
    ):
        raise InvalidValue(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters without "
            "control characters",
            field="description",
        )
    for name in ("event_types", "projects"):
        if fields.get(name) is not None:
            fields[name] = sorted(set(fields[name]))
    unknown_types = set(fields.get("event_types") or ()) - DELIVERED_TYPES
    if unknown_types:
        raise InvalidValue(
            f"{sorted(unknown_types)[0]!r} is not an event a webhook delivers (one of "
            f"{', '.join(sorted(DELIVERED_TYPES))})",
            field="event_types",
        )
    return fields


WEBHOOK_EVENT_TYPES: tuple[type[Webhook.Event], ...] = (
    Webhook.WebhookCreated,
    Webhook.WebhookUpdated,
    Webhook.WebhookSecretRotated,
    Webhook.WebhookEnabled,
    Webhook.WebhookDisabled,
    Webhook.WebhookDeleted,
)
