"""The webhook deliverer: follows the log and delivers its events to the subscribers'
endpoints, signed as Standard Webhooks 1.0 says.

Two loops in one task. *Taking in* (processes/webhooks/intake.py) queues the log's
events, exactly once. *Sending*: the head of each queue (a subscription's deliveries of
one model) that is due is leased and posted, up to ``in_flight`` at once; its outcome is
recorded with the attempt (processes/webhooks/settling.py). A failure holds that queue
only, and is retried on the schedule; a 410, or a delivery failing past the schedule,
disables the subscription (an event in the log, with the reason). A deliverer killed
mid-send leaves leases that the next one on this machine takes at once, and one
elsewhere once they run out (read_model/holders.py); a repeat carries the same
``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from anyio import to_thread
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from commands.ports import (
    EndpointAnswer,
    Endpoints,
    Sealer,
    SecretUnreadable,
    StoreUnavailable,
)
from commands.registry import ModelRegistry
from processes.webhooks import queue
from processes.webhooks.intake import Intake, LostRace
from processes.webhooks.schedule import DEFAULT_SCHEDULE
from processes.webhooks.settling import Disabler, Outcome, settle
from processes.webhooks.subscriptions import Subscriptions
from queries.ports import EventLog, LogUnavailable
from queries.visibility import ModelProjects
from read_model.holders import holder_identity, holder_is_gone
from write_model.webhook_signing import signed_headers

log = logging.getLogger("modelledger.webhooks")
GONE_CHECK_SECONDS = 10.0


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


@dataclass
class Deliverer:
    registry: ModelRegistry
    engine: Engine  # the read database: the queue and the position
    endpoints: Endpoints
    sealer: Sealer
    options: DelivererOptions = field(default_factory=DelivererOptions)
    owner: str = field(default_factory=holder_identity)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.event_log = EventLog.of(self.registry)
        self.subscriptions = Subscriptions(self.event_log, ModelProjects(self.event_log))
        self.intake = Intake(
            self.event_log,
            self.engine,
            self.subscriptions,
            self.options.page_size,
            self.options.pages_per_step,
            self.options.schedule[0],
        )
        self.disabler = Disabler(self.registry)
        self.gone: tuple[float, list[str]] = (0.0, [])  # when looked at: holders ended
        self.unsigned: set[str] = set()  # subscriptions whose secret this key cannot open
        self.wake = asyncio.Event()
        self.flying: dict[int, asyncio.Task[Outcome]] = {}
        self.opened: dict[str, str] = {}  # sealed secret -> secret
        self._purged_at = 0.0
        self._analyzed_at_queued = 0
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
                    continue  # (the intake reads the position again)
                except (LogUnavailable, StoreUnavailable, SQLAlchemyError) as error:
                    log.warning("webhook deliveries paused: %s", error)
                    await self._recover()
                except Exception:  # the deliverer must outlive any one failure
                    log.exception("webhook delivery step failed; retrying")
                    await self._recover()
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
        """Record what ended first (so a deletion or a disabling taken in next finds its
        deliveries settled), then take in, then send."""
        self.wake.clear()
        settled = await self._settle_finished()
        took = await to_thread.run_sync(self.intake.take_in)
        for gone in self.intake.deleted:
            await self.endpoints.forget(gone)
        self.intake.deleted.clear()
        started = await self._send_due()
        if self._housekeeping_due():
            await to_thread.run_sync(self._housekeeping)
        if not (took or settled or started):
            await self._idle()

    async def _recover(self) -> None:
        """After a failure: the position and the subscriptions are read again."""
        self.intake.forget()
        await self._pause(self.options.retry_seconds)

    # -- taking in ----------------------------------------------------------------

    def _ensure_tables(self) -> None:
        with self.engine.begin() as conn:
            queue.ensure_delivery_tables(conn)

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
            gone = self._gone_holders(conn, now)
            heads = queue.due_heads(conn, enabled, now, free + len(self.flying), gone)
            heads = [row for row in heads if row["seq"] not in self.flying][:free]
            return queue.claim(conn, heads, self.owner, now, self.options.lease_seconds)

    def _gone_holders(self, conn: Connection, now: float) -> list[str]:
        """Deliverers of this machine whose process ended while holding a lease (looked
        up again every GONE_CHECK_SECONDS: each look asks the system about processes)."""
        checked_at, gone = self.gone
        if now - checked_at >= GONE_CHECK_SECONDS:
            holders = queue.lease_holders(conn, now)
            gone = [h for h in holders if h != self.owner and holder_is_gone(h)]
            self.gone = (now, gone)
        return gone

    async def _attempt(self, due: queue.Due) -> Outcome:
        subscription = self.subscriptions.by_id.get(due.webhook_id)
        if subscription is None:  # not folded yet (a test), or deleted meanwhile
            return Outcome(due, None, time.time())
        moment = datetime.now(UTC)
        keys = [key for sealed in subscription.secrets_at(moment) if (key := self._open(sealed))]
        if not keys:  # sealed under another key: not the endpoint's failure, no attempt
            if subscription.id not in self.unsigned:
                self.unsigned.add(subscription.id)
                log.error(
                    "webhook %s: its signing secret cannot be opened with this "
                    "MODELLEDGER_SECRETS_KEY; its deliveries wait (rotate its secret)",
                    subscription.id,
                )
            return Outcome(due, None, time.time(), unsigned=True)
        headers = signed_headers(keys, due.message_id, int(moment.timestamp()), due.body)
        try:
            answer = await self.endpoints.post(subscription.id, subscription.url, headers, due.body)
        except Exception as error:  # an answer the adapter could not read is no answer
            log.exception("webhook %s: the attempt failed", subscription.id)
            answer = EndpointAnswer(None, 0.0, error=f"{type(error).__name__}: {error}")
        return Outcome(due, answer, moment.timestamp(), time.time())

    def _open(self, sealed: str) -> str | None:
        """The secret, or None when this key cannot open it (another key sealed it)."""
        if sealed not in self.opened:
            try:
                self.opened[sealed] = self.sealer.open(sealed)
            except SecretUnreadable:
                return None
        return self.opened[sealed]

    async def _settle_finished(self) -> int:
        done = [seq for seq, task in self.flying.items() if task.done()]
        if not done:
            return 0
        outcomes = [self.flying.pop(seq).result() for seq in done]
        disabled = await to_thread.run_sync(
            lambda: settle(self.engine, self.owner, outcomes, self.options.schedule)
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

    def _housekeeping_due(self) -> bool:
        analyze = self.intake.queued - self._analyzed_at_queued >= self.options.analyze_every_rows
        return analyze or time.time() - self._purged_at >= self.options.purge_every_seconds

    def _housekeeping(self) -> None:
        """Refresh the queue's statistics after many rows, forget old deliveries."""
        if self.intake.queued - self._analyzed_at_queued >= self.options.analyze_every_rows:
            with self.engine.begin() as conn:
                queue.refresh_statistics(conn)
            self._analyzed_at_queued = self.intake.queued
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
