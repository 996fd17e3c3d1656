"""The event feed's answers (GET /api/v1/events and its stream): an item per event of a
model, a key, a metric definition, an ended web UI session or a webhook subscription."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.query_schemas import HistoryItem, ModelId


class ModelEvent(HistoryItem):
    """An event of a model."""

    model_id: ModelId


class KeyEvent(HistoryItem):
    """An event of an API key (KeyIssued, KeyRevoked): shown to admins only."""

    key_id: str = Field(description="the API key's id")


class MetricDefinitionEvent(HistoryItem):
    """An event of a metric definition (MetricDefined, MetricRedefined,
    MetricDefinitionRemoved): registry-wide, shown to every reader."""

    metric: str = Field(description="the metric's name")


class SessionEvent(HistoryItem):
    """A web UI session ended by signing out (SessionEnded): shown to admins only."""

    session_id: str = Field(description="the ended session's id in the log")
    key_id: str | None = Field(
        description="the API key it was signed in with; null: MODELLEDGER_ADMIN_KEY"
    )


class WebhookEvent(HistoryItem):
    """An event of a webhook subscription (WebhookCreated, WebhookUpdated,
    WebhookSecretRotated, WebhookEnabled, WebhookDisabled, WebhookDeleted): shown to
    admins only, without the secret."""

    webhook_id: str = Field(description="the webhook subscription's id")


FeedEvent = ModelEvent | KeyEvent | MetricDefinitionEvent | SessionEvent | WebhookEvent


class EventPage(BaseModel):
    items: list[FeedEvent] = Field(description="in log order")
    next_after: int = Field(description="send as after for the next page")
    at_head: bool = Field(description="true: nothing more is stored yet")
