"""The webhooks projection: the subscriptions as admins list them (never a secret; the
deliverer keeps its own view, with the secrets, as it follows the log)."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from sqlalchemy import Connection

from projections.base import Projection, event_time
from read_model.webhooks import WEBHOOKS_VERSION, webhooks_table
from write_model.values import instant
from write_model.webhook import WEBHOOK_EVENT_TYPES, Webhook


class WebhooksProjection(Projection):
    name = "webhooks"
    version = WEBHOOKS_VERSION
    topics = WEBHOOK_EVENT_TYPES

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.table = webhooks_table(generation)
        # In log order: a batch may create, change and delete one subscription.
        self.steps: list[tuple[str, str, dict[str, Any]]] = []

    @classmethod
    def create_tables(cls, conn: Connection, generation: int) -> None:
        webhooks_table(generation).create(conn, checkfirst=True)

    @classmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None:
        webhooks_table(generation).drop(conn, checkfirst=True)

    @classmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        return [webhooks_table(generation).name]

    @singledispatchmethod
    def process_event(self, event: Any, position: int) -> None:
        """Webhook events only."""

    @process_event.register
    def created(self, event: Webhook.WebhookCreated, position: int) -> None:
        at = event_time(event)
        row = {
            "url": event.url,
            "event_types": event.event_types,
            "projects": event.projects,
            "description": event.description,
            "enabled": True,
            "disabled_reason": "",
            "created_at": at,
            "created_by": event.actor,
            "secret_rotated_at": None,
            "previous_secret_until": None,
        }
        self._step("insert", event, position, row)

    @process_event.register
    def updated(self, event: Webhook.WebhookUpdated, position: int) -> None:
        self._step("update", event, position, dict(event.changes))

    @process_event.register
    def rotated(self, event: Webhook.WebhookSecretRotated, position: int) -> None:
        until = instant(event.previous_until)
        changes = {"secret_rotated_at": event_time(event), "previous_secret_until": until}
        self._step("update", event, position, changes)

    @process_event.register
    def enabled(self, event: Webhook.WebhookEnabled, position: int) -> None:
        self._step("update", event, position, {"enabled": True, "disabled_reason": ""})

    @process_event.register
    def disabled(self, event: Webhook.WebhookDisabled, position: int) -> None:
        changes = {"enabled": False, "disabled_reason": event.reason}
        self._step("update", event, position, changes)

    @process_event.register
    def deleted(self, event: Webhook.WebhookDeleted, position: int) -> None:
        self._step("delete", event, position, {})

    def _step(self, kind: str, event: Any, position: int, values: dict[str, Any]) -> None:
        values = {**values, "updated_at": event_time(event), "position": position}
        self.steps.append((kind, str(event.originator_id), values))

    def flush(self) -> None:
        table = self.table
        for kind, webhook_id, values in self.steps:
            if kind == "insert":
                self.conn.execute(table.insert().values(webhook_id=webhook_id, **values))
            elif kind == "update":
                self.conn.execute(
                    table.update().where(table.c.webhook_id == webhook_id).values(**values)
                )
            else:
                self.conn.execute(table.delete().where(table.c.webhook_id == webhook_id))
        self.steps = []
