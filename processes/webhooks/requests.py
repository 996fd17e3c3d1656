"""What an admin asks of the webhook deliverer's queue, from the API process (the
``DeliveryQueue`` port): a test, a redelivery, a replay. Queued here, carried out by
whichever deliverer runs; the queue's tables exist from the API's start."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from commands.ports import StoreUnavailable
from processes.webhooks.payloads import new_message_id, webhook_test_body
from processes.webhooks.queue import D, delivery_row, enqueue
from read_model.webhooks import HELD, webhook_replays
from write_model.values import instant


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as error:
        raise StoreUnavailable(f"the webhook queue cannot be reached: {error}") from error


class DeliveryRequests:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.clock = engine, clock

    def queue_test(self, webhook_id: str, actor: str) -> str:
        body = webhook_test_body(webhook_id, instant(datetime.now(UTC)), actor)
        row = delivery_row(
            message_id=new_message_id(),
            webhook_id=webhook_id,
            queue="",
            position=None,
            kind="test",
            event_type="WebhookTest",
            body=body,
            now=self.clock(),
        )
        row["queue"] = "test:" + row["delivery_id"]  # its own queue: it waits for nothing
        with _store_errors(), self.engine.begin() as conn:
            enqueue(conn, [row])
        return str(row["delivery_id"])

    def redeliver(self, webhook_id: str, delivery_id: str, held: bool) -> str | None:
        """The same message again (its webhook-id too), after its queue's others; held
        while its subscription is disabled."""
        with _store_errors(), self.engine.begin() as conn:
            found = conn.execute(
                select(D).where(D.c.delivery_id == delivery_id, D.c.webhook_id == webhook_id)
            ).first()
            if found is None:
                return None
            test = found.kind == "test"
            row = delivery_row(
                message_id=found.message_id,
                webhook_id=webhook_id,
                queue=found.queue,
                position=found.position,
                kind="test" if test else "redelivery",
                event_type=found.event_type,
                body=found.body.encode(),
                now=self.clock(),
            )
            if test:
                row["queue"] = "test:" + row["delivery_id"]
            elif held:
                row["due_at"] = HELD
            enqueue(conn, [row])
        return str(row["delivery_id"])

    def replay(self, webhook_id: str, after: int, until: int, head: int) -> str:
        replay_id = secrets.token_hex(16)
        with _store_errors(), self.engine.begin() as conn:
            conn.execute(
                webhook_replays.insert().values(
                    replay_id=replay_id,
                    webhook_id=webhook_id,
                    cursor=after,
                    until=until,
                    asked_at=head,
                    created_at=self.clock(),
                )
            )
        return replay_id
