"""Admins' routes for webhooks: subscribe (the secret is shown once), list, change,
delete, rotate the secret, send a test, read the deliveries, redeliver and replay.

A change, and a read of one subscription, answer from its own events (read-your-writes,
as for a model); the list comes from the webhooks projection."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any
from uuid import UUID

from anyio import to_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.auth import allow
from api.deps import ActorDep, IdempotentDep, fingerprinted
from api.errors import ERRORS
from api.queries import MinPosition
from api.services import Services, ServicesDep, WebhookDesk
from api.webhook_schemas import (
    CreateWebhookRequest,
    DeliveryPage,
    DeliveryResponse,
    QueuedResponse,
    ReplayRequest,
    SignedWebhookResponse,
    UpdateWebhookRequest,
    WebhookChangedResponse,
    WebhookDeletedResponse,
    WebhookListResponse,
    WebhookResponse,
)
from commands.errors import WebhookNotFound
from commands.handlers import run_once
from commands.registry import CommandResult
from commands.webhooks import (
    CreateWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    UpdateWebhook,
    create_webhook,
    delete_webhook,
    existing_webhook,
    rotate_webhook_secret,
    update_webhook,
)
from queries.errors import InvalidQuery, UnknownPart
from queries.reading import read_errors, within_the_log
from queries.webhooks import deliveries_page, list_webhooks, one_delivery, webhook_from_log
from write_model.access import Action

router = APIRouter(
    prefix="/api/v1/admin/webhooks",
    tags=["webhooks"],
    dependencies=[allow(Action.ADMINISTER)],
    responses=ERRORS,
)
TEST_WAIT_MARGIN = 2.0  # seconds a test's answer waits beyond the delivery timeout
TEST_POLL_SECONDS = 0.05


def _desk(services: Services) -> WebhookDesk:
    assert services.webhooks is not None  # (composed in every API process)
    return services.webhooks


def _changed(
    services: Services, result: CommandResult, **extra: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """The subscription as its events now tell it (the change included)."""
    view = _found(services, UUID(result.id))
    headers = {"X-Position": str(result.position), "Cache-Control": "no-store"}
    return {**view, "position": result.position, **extra}, headers


def _found(services: Services, webhook_id: UUID) -> dict[str, Any]:
    view = webhook_from_log(services.event_log, webhook_id)
    if view is None:
        raise WebhookNotFound(f"webhook {webhook_id} not found", field="webhook_id")
    return view


@router.post(
    "",
    status_code=201,
    response_model=SignedWebhookResponse,
    summary="Subscribe an endpoint (the signing secret is in this answer only)",
)
def create(body: CreateWebhookRequest, services: ServicesDep, ctx: ActorDep) -> JSONResponse:
    command = CreateWebhook(**body.model_dump(exclude_none=True))
    made = create_webhook(services.registry, _desk(services).sealer, command, ctx)
    answer, headers = _changed(services, made.result, secret=made.secret)
    headers["Location"] = f"/api/v1/admin/webhooks/{made.result.id}"
    return JSONResponse(answer, status_code=201, headers=headers)


@router.get("", response_model=WebhookListResponse, summary="Every webhook subscription")
def get_all(services: ServicesDep, min_position: MinPosition = None) -> JSONResponse:
    items, position = list_webhooks(services.tables, min_position)
    return JSONResponse({"items": items}, headers={"X-Position": str(position)})


@router.get("/{webhook_id}", response_model=WebhookResponse, summary="One webhook subscription")
def get_one(
    webhook_id: UUID, services: ServicesDep, min_position: MinPosition = None
) -> JSONResponse:
    """From the subscription's own events: a change just made is in it."""
    _within_the_log(services, min_position)
    return JSONResponse(_found(services, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookChangedResponse,
    summary="Change the URL, filters or description; enable or disable deliveries",
)
def patch(
    webhook_id: UUID, body: UpdateWebhookRequest, services: ServicesDep, ctx: ActorDep
) -> JSONResponse:
    sent = body.model_dump(exclude_unset=True)
    result, _ = update_webhook(services.registry, UpdateWebhook(webhook_id=webhook_id, **sent), ctx)
    answer, headers = _changed(services, result)
    return JSONResponse(answer, headers=headers)


@router.delete(
    "/{webhook_id}",
    response_model=WebhookDeletedResponse,
    summary="Delete a subscription: nothing more is delivered to it",
)
def delete(
    webhook_id: UUID, services: ServicesDep, ctx: IdempotentDep, request: Request
) -> JSONResponse:
    """With an Idempotency-Key, a retry after a lost answer answers as the first did."""
    ctx = fingerprinted(ctx, request, None)
    command = DeleteWebhook(webhook_id=webhook_id)
    result = run_once(
        services.registry, ctx, lambda: delete_webhook(services.registry, command, ctx)
    )
    return JSONResponse(
        {"id": str(webhook_id), "deleted": True, "position": result.position},
        headers={"X-Position": str(result.position)},
    )


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=SignedWebhookResponse,
    summary="A new signing secret (in this answer only); the previous one signs on for "
    "MODELLEDGER_WEBHOOKS_SECRET_OVERLAP_SECONDS (a day)",
)
def rotate_secret(webhook_id: UUID, services: ServicesDep, ctx: ActorDep) -> JSONResponse:
    desk = _desk(services)
    command = RotateWebhookSecret(webhook_id=webhook_id)
    made = rotate_webhook_secret(services.registry, desk.sealer, command, ctx, desk.secret_overlap)
    answer, headers = _changed(services, made.result, secret=made.secret)
    return JSONResponse(answer, headers=headers)


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryResponse,
    responses={202: {"model": DeliveryResponse, "description": "queued, not yet attempted"}},
    summary="Send a WebhookTest delivery (no event of the log) and answer with its attempt",
)
async def send_test(webhook_id: UUID, services: ServicesDep, ctx: ActorDep) -> JSONResponse:
    """Waits for the attempt (up to the delivery timeout); 202 if no deliverer took it
    by then (it stays queued)."""
    desk = _desk(services)
    await to_thread.run_sync(existing_webhook, services.registry, webhook_id)
    delivery_id = await to_thread.run_sync(desk.queue.queue_test, str(webhook_id), ctx.actor)
    deadline = time.monotonic() + desk.timeout_seconds + TEST_WAIT_MARGIN
    while True:
        found = await to_thread.run_sync(_delivery, services, delivery_id)
        if found["state"] != "pending" or time.monotonic() > deadline:
            break
        await asyncio.sleep(TEST_POLL_SECONDS)
    return JSONResponse(found, status_code=202 if found["state"] == "pending" else 200)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    summary="The subscription's deliveries, newest first, with each attempt",
)
def deliveries(
    webhook_id: UUID,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        int | None,
        Query(ge=0, le=2**62, description="next_before of the page before (not a log position)"),
    ] = None,
    min_position: MinPosition = None,
) -> JSONResponse:
    """From the deliverer's own tables, as they stand (a `min_position` never waits)."""
    _within_the_log(services, min_position)
    _known(services, webhook_id)
    with read_errors(), services.tables.connect() as conn:
        page = deliveries_page(conn, str(webhook_id), before=before, limit=limit)
    return JSONResponse(page)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=QueuedResponse,
    summary="Send a delivery again (the same webhook-id), after its model's queued ones",
)
def redeliver(
    webhook_id: UUID,
    delivery_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")],
    services: ServicesDep,
) -> JSONResponse:
    webhook = existing_webhook(services.registry, webhook_id)
    queued = _desk(services).queue.redeliver(str(webhook_id), delivery_id, not webhook.enabled)
    if queued is None:
        raise UnknownPart(f"delivery {delivery_id} not found", field="delivery_id")
    return JSONResponse({"id": queued, "state": "pending"}, status_code=202)


@router.post(
    "/{webhook_id}/replay",
    status_code=202,
    response_model=QueuedResponse,
    summary="Deliver the log's events in a range again, as new messages",
)
def replay(webhook_id: UUID, body: ReplayRequest, services: ServicesDep) -> JSONResponse:
    _known(services, webhook_id)
    head = services.event_log.head()
    if body.after_position >= head:
        raise InvalidQuery(
            f"after_position is not before the log's head ({head})", field="after_position"
        )
    until = head if body.until_position is None else min(body.until_position, head)
    if until <= body.after_position:
        raise InvalidQuery("until_position is not after after_position", field="until_position")
    queued = _desk(services).queue.replay(str(webhook_id), body.after_position, until, head)
    return JSONResponse({"id": queued, "state": "pending"}, status_code=202)


def _within_the_log(services: Services, min_position: int | None) -> None:
    if min_position is not None:
        within_the_log(min_position, services.event_log.head())


def _known(services: Services, webhook_id: UUID) -> None:
    existing_webhook(services.registry, webhook_id)  # WebhookNotFound: 404


def _delivery(services: Services, delivery_id: str) -> dict[str, Any]:
    with read_errors(), services.tables.connect() as conn:
        found = one_delivery(conn, delivery_id)
    if found is None:  # (just queued: another database than the queue's?)
        raise UnknownPart(f"delivery {delivery_id} not found", field="delivery_id")
    return found
