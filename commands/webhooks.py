"""Subscribing endpoints to the log (admin commands on the ``Webhook`` aggregate).

The signing secret is made here, sealed (``Sealer``) before it enters the log, and
handed back once in the command's answer: nobody can read it again, only rotate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from pydantic import Field

from commands.errors import WebhookNotFound
from commands.messages import Command, ProjectName, Reason
from commands.ports import Sealer
from commands.registry import CommandContext, CommandResult, ModelRegistry, store_errors
from write_model.webhook import MAX_URL_LENGTH, Webhook
from write_model.webhook_signing import new_secret

EventTypeName = Annotated[str, Field(min_length=1, max_length=100)]
EventTypes = Annotated[list[EventTypeName], Field(min_length=1, max_length=50)]
Projects = Annotated[list[ProjectName], Field(min_length=1, max_length=100)]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]


class CreateWebhook(Command):
    url: Url
    event_types: EventTypes | None = None
    projects: Projects | None = None
    description: Reason = ""


class UpdateWebhook(Command):
    """Only the fields sent change; ``enabled`` turns deliveries off or back on."""

    webhook_id: UUID
    url: Url | None = None
    event_types: EventTypes | None = None
    projects: Projects | None = None
    description: Reason | None = None
    enabled: bool | None = None


class RotateWebhookSecret(Command):
    webhook_id: UUID


class DisableWebhook(Command):
    webhook_id: UUID
    reason: Reason


class DeleteWebhook(Command):
    webhook_id: UUID


@dataclass(frozen=True)
class SignedWebhook:
    """A subscription and its new secret: in this answer only."""

    result: CommandResult
    webhook: Webhook
    secret: str


def create_webhook(
    registry: ModelRegistry, sealer: Sealer, cmd: CreateWebhook, ctx: CommandContext
) -> SignedWebhook:
    secret = new_secret()
    webhook = Webhook.subscribe(
        sealed_secret=sealer.seal(secret),
        meta=ctx.meta,
        url=cmd.url,
        event_types=cmd.event_types,
        projects=cmd.projects,
        description=cmd.description,
    )
    return SignedWebhook(registry.commit(webhook, ctx), webhook, secret)


def update_webhook(
    registry: ModelRegistry, cmd: UpdateWebhook, ctx: CommandContext
) -> tuple[CommandResult, Webhook]:
    webhook = existing_webhook(registry, cmd.webhook_id)
    sent = cmd.model_fields_set - {"webhook_id", "enabled"}
    webhook.update({name: getattr(cmd, name) for name in sent}, ctx.meta)
    if cmd.enabled is True:
        webhook.enable(ctx.meta)
    elif cmd.enabled is False:
        webhook.disable("disabled by an admin", ctx.meta)
    return registry.commit(webhook, ctx), webhook


def rotate_webhook_secret(
    registry: ModelRegistry,
    sealer: Sealer,
    cmd: RotateWebhookSecret,
    ctx: CommandContext,
    overlap: timedelta,
) -> SignedWebhook:
    """A new secret; the previous one keeps signing for ``overlap``."""
    webhook = existing_webhook(registry, cmd.webhook_id)
    secret = new_secret()
    webhook.rotate_secret(sealer.seal(secret), datetime.now(UTC) + overlap, ctx.meta)
    return SignedWebhook(registry.commit(webhook, ctx), webhook, secret)


def disable_webhook(
    registry: ModelRegistry, cmd: DisableWebhook, ctx: CommandContext
) -> CommandResult:
    """The deliverer's, when an endpoint is gone (410) or fails past the schedule."""
    webhook = existing_webhook(registry, cmd.webhook_id)
    webhook.disable(cmd.reason, ctx.meta)
    return registry.commit(webhook, ctx)


def delete_webhook(
    registry: ModelRegistry, cmd: DeleteWebhook, ctx: CommandContext
) -> CommandResult:
    webhook = existing_webhook(registry, cmd.webhook_id)
    webhook.delete(ctx.meta)
    return registry.commit(webhook, ctx)


def existing_webhook(registry: ModelRegistry, webhook_id: UUID) -> Webhook:
    found = read_webhook(registry, webhook_id)
    if found is None or found.deleted:
        raise WebhookNotFound(f"webhook {webhook_id} not found", field="webhook_id")
    return found


def read_webhook(registry: ModelRegistry, webhook_id: UUID) -> Webhook | None:
    """The subscription as the log has it now (never a cached copy)."""
    with store_errors():
        events = list(registry.events.get(webhook_id, lte=1))
        if not events or not isinstance(events[0], Webhook.WebhookCreated):
            return None
        events += registry.events.get(webhook_id, gt=1)
    found: Any = project_aggregate(None, events)
    return found if isinstance(found, Webhook) else None
