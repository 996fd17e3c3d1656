"""The webhook deliverer: follows the log and delivers its events to the subscribers'
endpoints, signed as Standard Webhooks 1.0 says.

Two loops in one task. *Taking in*: a page of the log after the recorded position
becomes queued deliveries (one per subscription whose filters match), and the position
moves, in one transaction: a crash never loses or doubles one. *Sending*: the head of
each queue (a subscription's deliveries of one model) that is due is leased and
posted, up to ``in_flight`` at once; its outcome is recorded with the attempt. A
failure holds that queue only, and is retried on the schedule; a 410, or a delivery
failing past the schedule, disables the subscription (an event in the log, with the
reason). A deliverer killed mid-send leaves leases that the next one takes at once
(read_model/holders.py); a repeat carries the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from eventsourcing.persistence import Notification
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from commands.ports import EndpointAnswer, Endpoints, Sealer, StoreUnavailable
from commands.registry import ModelRegistry
from processes.positions import advance_relayed, relayed_position
from processes.webhooks import queue
from processes.webhooks.payloads import event_body, event_message_id, new_message_id
from processes.webhooks.schedule import DEFAULT_SCHEDULE
from processes.webhooks.settling import Disabler, Outcome, settle
from processes.webhooks.subscriptions import WEBHOOK_TOPICS, Subscriptions
from queries.ports import EventLog, LogUnavailable
from queries.visibility import ModelProjects
from read_model.holders import holder_identity
from read_model.relay import WEBHOOK_DELIVERER as DELIVERER_NAME
from write_model.webhook import Webhook
from write_model.webhook_signing import signed_headers

log = logging.getLogger("modelledger.webhooks")


@dataclass
class DelivererOptions:
    schedule: Sequence[float] = DEFAULT_SCHEDULE
    log_days: float = 30.0
    lease_seconds: float = 45.0  # longer than one attempt (the timeout)
    in_flight: int = 64  # deliveries sent at once
    page_size: int = 500
    pages_per_step: int = 10
    poll_seconds: float = 0.25  # how often the log is looked at without a doorbell
    retry_seconds: float = 2.0  # the pause after an outage
    purge_every_seconds: float = 600.0
    analyze_every_rows: int = 5000  # deliveries queued between two refreshes of statistics


class LostRace(Exception):
    """Another deliverer queued this page first."""


@dataclass
class Deliverer:
    registry: ModelRegistry
    engine: Engine  # the read database: the queue and the position
    endpoints: Endpoints
    sealer: Sealer
    options: DelivererOptions = field(default_factory=DelivererOptions)
    owner: str = field(default_factory=holder_identity)
    position: int | None = None  # None: not read yet
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.event_log = EventLog.of(self.registry)
        self.subscriptions = Subscriptions(self.event_log, ModelProjects(self.event_log))
        self.disabler = Disabler(self.registry)
        self.wake = asyncio.Event()
        self.flying: dict[int, asyncio.Task[Outcome]] = {}
        self.opened: dict[str, str] = {}  # sealed secret -> secret
        self._purged_at = 0.0
        self._queued_since_analyze = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- running ----------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until ``stopping`` is set; attempts in flight are finished first."""
        self._loop = asyncio.get_running_loop()
        self.event_log.doorbells.append(self.ring)
        try:
            await to_thread.run_sync(self._ensure_tables)
            while not self.stopping.is_set():
                try:
                    await self.step()
                except LostRace:
                    self.position = None
                except (LogUnavailable, StoreUnavailable, SQLAlchemyError) as error:
                    log.warning("webhook deliveries paused: %s", error)
                    self._forget()
                    await self._pause(self.options.retry_seconds)
            await self._land()
        finally:
            with contextlib.suppress(ValueError):
                self.event_log.doorbells.remove(self.ring)
            await self.endpoints.close()

    def ring(self, _position: int) -> None:
        """A doorbell (called after an append in this process, from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake.set)

    async def step(self) -> None:
        self.wake.clear()
        took = await to_thread.run_sync(self.take_in)
        settled = await self._settle_finished()
        started = await self._send_due()
        await to_thread.run_sync(self._purge_if_due)
        if not (took or settled or started):
            await self._idle()

    def _forget(self) -> None:
        """After a failure or a lost race: read the position and the subscriptions again."""
        self.position = None
        self.subscriptions.reset()

    # -- taking in ----------------------------------------------------------------

    def _ensure_tables(self) -> None:
        with self.engine.begin() as conn:
            queue.ensure_delivery_tables(conn)

    def take_in(self) -> int:
        """Queue what the log added (a few pages) and what replays ask for."""
        taken = 0
        for _ in range(self.options.pages_per_step):
            read = self._take_page()
            taken += read
            if read < self.options.page_size:
                break
        return taken + self._take_replays()

    def _take_page(self) -> int:
        if self.position is None:
            with self.engine.begin() as conn:
                self.position = relayed_position(conn, DELIVERER_NAME)
        self.subscriptions.catch_up(self.position)
        page = self.event_log.page(self.position, self.options.page_size)
        if not page:
            return 0
        now = time.time()
        rows: list[dict[str, Any]] = []
        turned: list[tuple[str, Any]] = []  # subscriptions enabled, disabled, deleted
        before = self.subscriptions.kept(page)
        for notification in page:
            if notification.topic in WEBHOOK_TOPICS:
                event = self.event_log.decode(notification)
                self.subscriptions.apply(event)
                turned.append((str(event.originator_id), event))
            elif self.subscriptions.by_id:
                rows += self._deliveries_of(notification, now)
        self.subscriptions.folded_to = page[-1].id
        with self.engine.begin() as conn:
            queue.enqueue(conn, rows)
            for webhook_id, event in turned:
                if isinstance(event, Webhook.WebhookEnabled):
                    queue.start_again(conn, webhook_id, now)
                elif isinstance(event, Webhook.WebhookDisabled):
                    queue.hold_all(conn, webhook_id)
                elif isinstance(event, Webhook.WebhookDeleted):
                    queue.cancel_all(conn, webhook_id, now)
            if not advance_relayed(conn, DELIVERER_NAME, self.position, page[-1].id):
                self.subscriptions.restore(before)  # as of our position: on from theirs
                raise LostRace()
        self.position = page[-1].id
        self._queued_since_analyze += len(rows)
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
        return [
            queue.delivery_row(
                message_id=new_message_id() if replay else event_message_id(s.id, notification.id),
                webhook_id=s.id,
                queue=str(event.originator_id),
                position=notification.id,
                kind="replay" if replay else "event",
                event_type=type(event).__name__,
                body=body,
                now=now,
                first_wait=self.options.schedule[0],
            )
            for s in wanting
        ]

    def _take_replays(self) -> int:
        """One page of each replay asked for, with its cursor, in one transaction each."""
        with self.engine.begin() as conn:
            replays = queue.open_replays(conn)
        taken = 0
        for replay in replays:
            page = self.event_log.page(
                replay["cursor"], self.options.page_size, until=replay["until"]
            )
            now = time.time()
            rows = [
                row
                for n in page
                if n.topic not in WEBHOOK_TOPICS
                for row in self._deliveries_of(n, now, only=replay["webhook_id"])
            ]
            done = len(page) < self.options.page_size
            with self.engine.begin() as conn:
                queue.enqueue(conn, rows)
                cursor = page[-1].id if page else replay["cursor"]
                queue.advance_replay(conn, replay["replay_id"], cursor, done)
            taken += len(page) + 1
        return taken

    # -- sending ------------------------------------------------------------------

    async def _send_due(self) -> int:
        free = self.options.in_flight - len(self.flying)
        if free <= 0:
            return 0
        claimed = await to_thread.run_sync(self._claim, free)
        for due in claimed:
            task = asyncio.create_task(self._attempt(due))
            task.add_done_callback(lambda _: self.wake.set())
            self.flying[due.seq] = task
        return len(claimed)

    def _claim(self, free: int) -> list[queue.Due]:
        enabled = [s.id for s in self.subscriptions.by_id.values() if s.enabled]
        now = time.time()
        with self.engine.begin() as conn:
            heads = queue.due_heads(conn, enabled, now, free + len(self.flying))
            heads = [row for row in heads if row["seq"] not in self.flying][:free]
            return queue.claim(conn, heads, self.owner, now, self.options.lease_seconds)

    async def _attempt(self, due: queue.Due) -> Outcome:
        subscription = self.subscriptions.by_id.get(due.webhook_id)
        if subscription is None:  # deleted meanwhile (a test's, or a race)
            return Outcome(due, None, time.time())
        moment = datetime.now(UTC)
        keys = [key for sealed in subscription.secrets_at(moment) if (key := self._open(sealed))]
        if not keys:  # sealed under another MODELLEDGER_SECRETS_KEY: rotating makes a new one
            error = "the signing secret cannot be opened with this MODELLEDGER_SECRETS_KEY"
            return Outcome(due, EndpointAnswer(None, 0.0, error=error), time.time())
        headers = signed_headers(keys, due.message_id, int(moment.timestamp()), due.body)
        answer = await self.endpoints.post(subscription.id, subscription.url, headers, due.body)
        return Outcome(due, answer, moment.timestamp(), time.time())

    def _open(self, sealed: str) -> str | None:
        """The secret, or None when this key cannot open it (another key sealed it)."""
        if sealed not in self.opened:
            try:
                self.opened[sealed] = self.sealer.open(sealed)
            except Exception:  # (the adapter's SecretUnreadable: processes cannot name it)
                return None
        return self.opened[sealed]

    async def _settle_finished(self) -> int:
        done = [seq for seq, task in self.flying.items() if task.done()]
        if not done:
            return 0
        outcomes = [self.flying.pop(seq).result() for seq in done]
        disabled = await to_thread.run_sync(
            lambda: settle(self.engine, outcomes, self.options.schedule)
        )
        for webhook_id, reason in disabled.items():
            if (subscription := self.subscriptions.by_id.get(webhook_id)) is not None:
                subscription.enabled = False  # at once here; the log says so next
            await to_thread.run_sync(self.disabler.disable, webhook_id, reason)
        return len(outcomes)

    async def _land(self) -> None:
        """On stopping: wait for the attempts in flight and record them."""
        if self.flying:
            await asyncio.wait(list(self.flying.values()), timeout=self.options.lease_seconds)
            with contextlib.suppress(Exception):
                await self._settle_finished()

    # -- housekeeping ------------------------------------------------------------

    def _purge_if_due(self) -> None:
        if self._queued_since_analyze >= self.options.analyze_every_rows:
            with self.engine.begin() as conn:
                queue.refresh_statistics(conn)
            self._queued_since_analyze = 0
        now = time.time()
        if now - self._purged_at < self.options.purge_every_seconds:
            return
        with self.engine.begin() as conn:
            gone = queue.purge(conn, now - self.options.log_days * 86_400)
        self._purged_at = now
        if gone:
            log.info("forgot %d deliveries older than %s days", gone, self.options.log_days)

    async def _idle(self) -> None:
        """Until the log grows (this process's doorbell), an attempt ends, or the poll
        interval passes (another process's appends; retries coming due)."""
        await self._pause(self.options.poll_seconds, self.wake)

    async def _pause(self, seconds: float, also: asyncio.Event | None = None) -> None:
        waits = [asyncio.ensure_future(self.stopping.wait())]
        if also is not None:
            waits.append(asyncio.ensure_future(also.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
