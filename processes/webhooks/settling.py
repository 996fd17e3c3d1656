"""What an attempt's answer decides: delivered (2xx); tried again on the schedule
(waiting out a 429's or 503's Retry-After); or, on a 410 or past the schedule, held
while its subscription is disabled with the reason (re-enabling it starts the
schedule again from this delivery). A test is tried once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from commands.errors import ConcurrentChange, WebhookNotFound
from commands.ports import EndpointAnswer, StoreUnavailable
from commands.registry import CommandContext, ModelRegistry
from commands.webhooks import DisableWebhook, disable_webhook
from processes.webhooks import queue
from processes.webhooks.schedule import next_wait
from write_model.errors import WebhookDeleted

log = logging.getLogger("modelledger.webhooks")

ACTOR = "webhook-deliverer"
WAITED_OUT = (429, 503)  # answers whose Retry-After is honoured
UNSIGNED_WAIT = 60.0  # seconds before a delivery no secret signs is looked at again
UNKNOWN_FOR = 60.0  # seconds a test waits for its subscription to be known


@dataclass(frozen=True)
class Outcome:
    due: queue.Due
    answer: EndpointAnswer | None  # None: not attempted (see ``unsigned``)
    at: float  # epoch seconds the attempt started
    ended: float = 0.0  # and when its answer came (a wait counts from then)
    unsigned: bool = False  # no secret this process can open: not attempted


def settle(
    engine: Engine, owner: str, outcomes: Sequence[Outcome], schedule: Sequence[float]
) -> dict[str, str]:
    """Record the attempts and their consequences, in one transaction; the
    subscriptions to disable, with why."""
    disabled: dict[str, str] = {}
    attempts, changes = [], []
    for outcome in outcomes:
        due, answer, now = outcome.due, outcome.answer, outcome.at
        then = max(outcome.ended, now)
        if answer is None:  # no attempt: released, to be tried later
            changes.append(_unattempted(due, now, outcome.unsigned))
            continue
        attempts.append(queue.attempt_row(due, answer, now))
        tried = due.attempts + 1
        if answer.status is not None and 200 <= answer.status < 300:
            changes.append(_change(due, queue.DELIVERED, tried, now, finished=then))
        elif due.kind == "test":
            changes.append(_change(due, queue.FAILED, tried, now, finished=then))
        elif answer.status == 410:
            changes.append(_change(due, queue.PENDING, tried, then))
            disabled[due.webhook_id] = "the endpoint answered 410 Gone"
        else:
            honoured = answer.retry_after if answer.status in WAITED_OUT else None
            wait = next_wait(schedule, tried, honoured)
            changes.append(_change(due, queue.PENDING, tried, then + (wait or 0.0)))
            if wait is None:
                disabled[due.webhook_id] = (
                    f"a delivery failed {tried} times, the retry schedule's end; "
                    f"the last attempt: {answer.error}"
                )
    with engine.begin() as conn:
        queue.record(conn, owner, attempts, changes)
    return disabled


def _unattempted(due: queue.Due, now: float, unsigned: bool) -> dict[str, Any]:
    """Unsigned: waits for a secret this process can open (a rotation, another
    deliverer). Else its subscription is not known here: a test queued before the
    deliverer took in the subscription waits a moment; one whose subscription is gone
    (deleted before the test was queued) ends."""
    if unsigned:
        return _change(due, queue.PENDING, due.attempts, now + UNSIGNED_WAIT)
    if now - due.created_at > UNKNOWN_FOR:
        return _change(due, queue.CANCELLED, due.attempts, now, finished=now)
    return _change(due, queue.PENDING, due.attempts, now + 1.0)


def _change(
    due: queue.Due, state: str, attempts: int, due_at: float, finished: float | None = None
) -> dict[str, Any]:
    return {
        "seq": due.seq,
        "state": state,
        "attempts": attempts,
        "due_at": due_at,
        "finished_at": finished,
    }


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
        except (ConcurrentChange, StoreUnavailable) as error:  # the next attempt decides again
            log.warning("webhook %s not disabled now (%s): %s", webhook_id, error, reason)
            return
        log.warning("webhook %s disabled: %s", webhook_id, reason)
