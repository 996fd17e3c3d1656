"""What a delivery's body says: ``{type, timestamp, data}`` (Standard Webhooks), where
``data`` holds the event's fields beside where it stands in the log: the model's id (a
metric definition's name), its version, the event's position, actor, correlation and
causation ids."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import orjson

from queries.models import history_item
from write_model.metric_definition import MetricDefinition

TEST_TYPE = "WebhookTest"


def event_body(position: int, event: Any) -> bytes:
    item = history_item(position, event)
    subject = (
        {"metric": getattr(event, "name", None)}
        if isinstance(event, MetricDefinition.Event)
        else {"model_id": str(event.originator_id)}
    )
    data = {
        **item["data"],
        **subject,
        "version": item["version"],
        "position": position,
        "actor": item["actor"],
        "correlation_id": item["correlation_id"],
        "causation_id": item["causation_id"],
    }
    return orjson.dumps({"type": item["type"], "timestamp": item["timestamp"], "data": data})


def webhook_test_body(webhook_id: str, moment: str, actor: str) -> bytes:
    """A test delivery's: no event of the log, only the subscription's id."""
    data = {"webhook_id": webhook_id, "actor": actor, "test": True}
    return orjson.dumps({"type": TEST_TYPE, "timestamp": moment, "data": data})


def event_message_id(webhook_id: str, position: int) -> str:
    """The same for every attempt and redelivery of one event to one subscription (and
    for the same event queued again after a crash): the receiver's idempotency key."""
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"webhook:{webhook_id}:{position}").hex


def new_message_id() -> str:
    """A replay's or a test's: a new message the receiver asked for."""
    return "msg_" + secrets.token_hex(16)
