"""The deliverer's intake: the log's events become queued deliveries.

A page of the log after the recorded position becomes one delivery per subscription
whose filters match, and the position moves, in one transaction with a compare-and-set:
a crash never loses or doubles one, and of two deliverers reading the same page one
queues it. The subscriptions are folded from the same pages, so each event is matched
against them as they stood when it was recorded. Replays are read the same way, from
their own cursors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Notification
from sqlalchemy import Connection, Engine

from processes.positions import advance_relayed, relayed_position
from processes.webhooks import queue
from processes.webhooks.payloads import event_body, event_message_id, new_message_id
from processes.webhooks.subscriptions import WEBHOOK_TOPICS, Subscriptions
from queries.ports import EventLog
from read_model.relay import WEBHOOK_DELIVERER
from read_model.webhooks import HELD
from write_model.webhook import Webhook

REPLAYS_EVERY = 0.5  # seconds


class LostRace(Exception):
    """Another deliverer queued this page (or this replay's page) first."""


@dataclass
class Intake:
    event_log: EventLog
    engine: Engine
    subscriptions: Subscriptions
    page_size: int = 500
    pages_per_step: int = 10
    first_wait: float = 0.0  # the schedule's first wait
    position: int | None = None  # None: to be read
    deleted: list[str] = field(default_factory=list)  # subscriptions gone, for the sender
    queued: int = 0  # deliveries queued (for the statistics' refresh)
    replays_seen_at: float = 0.0  # when the replays asked for were last looked at

    def take_in(self) -> int:
        """Queue what the log added (a few pages) and what replays ask for."""
        taken = 0
        for _ in range(self.pages_per_step):
            read = self._take_page()
            taken += read
            if read < self.page_size:
                break
        return taken + self._take_replays()

    def forget(self) -> None:
        """After a failure: read the position and the subscriptions again."""
        self.position = None
        self.subscriptions.reset()

    def _take_page(self) -> int:
        if self.position is None:
            with self.engine.begin() as conn:
                self.position = relayed_position(conn, WEBHOOK_DELIVERER)
        self.subscriptions.catch_up(self.position)
        page = self.event_log.page(self.position, self.page_size)
        if not page:
            return 0
        now = time.time()
        rows: list[dict[str, Any]] = []
        turned: list[Any] = []  # subscriptions enabled, disabled, deleted
        before = self.subscriptions.kept(page)
        for notification in page:
            if notification.topic in WEBHOOK_TOPICS:
                event = self.event_log.decode(notification)
                self.subscriptions.apply(event)
                turned.append(event)
            elif self.subscriptions.by_id:
                rows += self._deliveries_of(notification, now)
        self.subscriptions.folded_to = page[-1].id
        with self.engine.begin() as conn:
            queue.enqueue(conn, rows)
            _turn(conn, turned, now)
            if not advance_relayed(conn, WEBHOOK_DELIVERER, self.position, page[-1].id):
                self.subscriptions.restore(before)  # as of our position: on from theirs
                self.position = None
                raise LostRace()
        self.position = page[-1].id
        self.queued += len(rows)
        self.deleted += [
            str(e.originator_id) for e in turned if isinstance(e, Webhook.WebhookDeleted)
        ]
        return len(page)

    def _deliveries_of(
        self, notification: Notification, now: float, only: str | None = None
    ) -> list[dict[str, Any]]:
        event = self.event_log.decode(notification)
        wanting = [s for s in self.subscriptions.wanting(event) if only is None or s.id == only]
        if not wanting:
            return []
        body = event_body(notification.id, event)
        replay = only is not None
        rows = []
        for s in wanting:
            row = queue.delivery_row(
                message_id=new_message_id() if replay else event_message_id(s.id, notification.id),
                webhook_id=s.id,
                queue=str(event.originator_id),
                position=notification.id,
                kind="replay" if replay else "event",
                event_type=type(event).__name__,
                body=body,
                now=now,
                first_wait=self.first_wait,
            )
            if not s.enabled:  # kept for when it is enabled again
                row["due_at"] = HELD
            rows.append(row)
        return rows

    def _take_replays(self) -> int:
        """A page of each replay asked for, once the subscriptions are folded as far as
        the log stood when it was asked for (its subscription is known by then). Looked
        for every REPLAYS_EVERY seconds, not at every step: a query fewer per step."""
        now = time.monotonic()
        if now - self.replays_seen_at < REPLAYS_EVERY:
            return 0
        self.replays_seen_at = now
        with self.engine.begin() as conn:
            replays = queue.open_replays(conn)
        taken = 0
        for replay in replays:
            if self.position is None or self.position < replay["asked_at"]:
                continue
            try:
                taken += self._take_replay_page(replay)
                self.replays_seen_at = 0.0  # more to come: look again at the next step
            except LostRace:
                continue  # another deliverer took this page: on with the next
        return taken

    def _take_replay_page(self, replay: dict[str, Any]) -> int:
        seen, webhook_id = replay["cursor"], replay["webhook_id"]
        page = self.event_log.page(seen, self.page_size, until=replay["until"])
        gone = webhook_id not in self.subscriptions.by_id  # deleted: the replay ends
        now = time.time()
        rows = [
            row
            for n in page
            if n.topic not in WEBHOOK_TOPICS and not gone
            for row in self._deliveries_of(n, now, only=webhook_id)
        ]
        done = gone or len(page) < self.page_size
        with self.engine.begin() as conn:
            queue.enqueue(conn, rows)
            cursor = page[-1].id if page else seen
            if not queue.advance_replay(conn, replay["replay_id"], seen, cursor, done):
                raise LostRace()
        return len(page) + 1


def _turn(conn: Connection, events: Sequence[Any], now: float) -> None:
    """What a subscription's change does to its queued deliveries."""
    for event in events:
        webhook_id = str(event.originator_id)
        if isinstance(event, Webhook.WebhookEnabled):
            queue.start_again(conn, webhook_id, now)
        elif isinstance(event, Webhook.WebhookDisabled):
            queue.hold_all(conn, webhook_id)
        elif isinstance(event, Webhook.WebhookDeleted):
            queue.cancel_all(conn, webhook_id, now)
