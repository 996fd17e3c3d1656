"""The webhooks admin API's bodies and answers (api/admin_webhooks.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from commands.messages import Reason
from commands.webhooks import EventTypes, Projects, Url
from queries.messages import Position


class CreateWebhookRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://ci.example.com/hooks/modelledger",
                    "event_types": ["ModelTrained", "ModelDeployed"],
                    "projects": ["fraud"],
                    "description": "retrain and redeploy the scoring service",
                }
            ]
        },
    )

    url: Url = Field(description="where deliveries are POSTed (http or https)")
    event_types: EventTypes | None = Field(
        default=None, description="the events delivered (names in the catalogue); omitted: all"
    )
    projects: Projects | None = Field(
        default=None, description="the projects whose models' events are delivered; omitted: all"
    )
    description: Reason = ""


class UpdateWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    projects: Projects | None = None
    description: Reason | None = None
    enabled: bool | None = Field(
        default=None,
        description="false: deliveries stop (and wait); true: they go on from where they stopped",
    )


class WebhookResponse(BaseModel):
    id: str
    url: str
    event_types: list[str] | None
    projects: list[str] | None
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="why deliveries stopped, when they did")
    created_at: str
    created_by: str
    updated_at: str
    secret_rotated_at: str | None
    previous_secret_until: str | None = Field(
        description="until then the previous secret signs too (after a rotation)"
    )


class WebhookChangedResponse(WebhookResponse):
    position: int = Field(description="global event position of the change")


class SignedWebhookResponse(WebhookChangedResponse):
    secret: str = Field(
        description="the signing secret (`whsec_...`): in this answer only, never again"
    )


class WebhookListResponse(BaseModel):
    items: list[WebhookResponse]


class WebhookDeletedResponse(BaseModel):
    id: str
    deleted: bool = Field(description="always true: nothing more is delivered")
    position: int | None


class AttemptResponse(BaseModel):
    at: str
    status_code: int | None = Field(description="null: no answer (refused, timed out...)")
    latency_ms: float
    error: str | None
    response: str | None = Field(description="the first 1 KB of the endpoint's answer")


class DeliveryResponse(BaseModel):
    id: str = Field(description="this delivery's id (for redeliver)")
    message_id: str = Field(description="the webhook-id header: the same on every attempt")
    kind: str = Field(description="event | redelivery | replay | test")
    event_type: str
    position: int | None = Field(description="the event's position in the log")
    state: str = Field(description="pending | delivered | failed | cancelled")
    created_at: str
    next_attempt_at: str | None = Field(
        description="null: finished, or held while its subscription is disabled"
    )
    finished_at: str | None
    attempts: list[AttemptResponse]


class DeliveryPage(BaseModel):
    items: list[DeliveryResponse] = Field(description="newest first")
    next_before: int | None = Field(description="send as before for older ones")


class QueuedResponse(BaseModel):
    id: str = Field(description="the queued delivery's or replay's id")
    state: str = "pending"


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_position: Position = Field(
        description="replay the events after this position", strict=True
    )
    until_position: Position | None = Field(
        strict=True,
        default=None,
        description="up to this position (included); omitted: the log's head",
    )
