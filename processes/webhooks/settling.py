"""What an attempt's answer decides: delivered (2xx); tried again on the schedule
(waiting out a 429's or 503's Retry-After); or, on a 410 or past the schedule, held
while its subscription is disabled with the reason (re-enabling it starts the
schedule again from this delivery). A test is tried once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Engine

from commands.errors import WebhookNotFound
from commands.ports import EndpointAnswer
from commands.registry import CommandContext, ModelRegistry
from commands.webhooks import DisableWebhook, disable_webhook
from processes.webhooks import queue
from processes.webhooks.schedule import next_wait
from write_model.errors import WebhookDeleted

log = logging.getLogger("modelledger.webhooks")

ACTOR = "webhook-deliverer"
WAITED_OUT = (429, 503)  # answers whose Retry-After is honoured


@dataclass(frozen=True)
class Outcome:
    due: queue.Due
    answer: EndpointAnswer | None  # None: the subscription is gone
    at: float  # epoch seconds the attempt started


def settle(
    engine: Engine, outcomes: Sequence[Outcome], schedule: Sequence[float]
) -> dict[str, str]:
    """Record the attempts and their consequences, in one transaction; the
    subscriptions to disable, with why."""
    disabled: dict[str, str] = {}
    with engine.begin() as conn:
        for outcome in outcomes:
            due, answer, now = outcome.due, outcome.answer, outcome.at
            if answer is None:
                queue.finish(conn, due.seq, queue.CANCELLED, due.attempts, now)
                continue
            queue.record_attempt(conn, due, answer, now)
            attempts = due.attempts + 1
            if answer.status is not None and 200 <= answer.status < 300:
                queue.finish(conn, due.seq, queue.DELIVERED, attempts, now)
            elif due.kind == "test":
                queue.finish(conn, due.seq, queue.FAILED, attempts, now)
            elif answer.status == 410:
                queue.retry_later(conn, due.seq, attempts, now)
                disabled[due.webhook_id] = "the endpoint answered 410 Gone"
            else:
                honoured = answer.retry_after if answer.status in WAITED_OUT else None
                wait = next_wait(schedule, attempts, honoured)
                if wait is None:
                    queue.retry_later(conn, due.seq, attempts, now)
                    disabled[due.webhook_id] = (
                        f"a delivery failed {attempts} times, the retry schedule's end; "
                        f"the last attempt: {answer.error}"
                    )
                else:
                    queue.retry_later(conn, due.seq, attempts, now + wait)
    return disabled


@dataclass(frozen=True)
class Disabler:
    registry: ModelRegistry

    def disable(self, webhook_id: str, reason: str) -> None:
        one_line = " ".join(reason.split())[:1000]
        command = DisableWebhook(webhook_id=UUID(webhook_id), reason=one_line)
        try:
            disable_webhook(self.registry, command, CommandContext(actor=ACTOR))
        except (WebhookNotFound, WebhookDeleted):
            return  # deleted meanwhile: nothing to disable
        log.warning("webhook %s disabled: %s", webhook_id, reason)
