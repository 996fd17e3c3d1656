"""The Kafka relay: every model event, in log order, to a topic, as CloudEvents 1.0 JSON
(through a ``Publisher``: adapters/kafka.py).

The relay reads the log after the position it recorded, sends a batch, waits
until Kafka has acknowledged all of it (acks=all), then records the batch's last
position. A restart resumes from there: nothing is skipped. A crash between the
acknowledgement and the record re-sends that one batch; its events carry the
same ``id`` (``<model id>/<version>``), so consumers can drop the repeats.

Messages are keyed by model id, so each model's events stay in order within
their partition. API keys' and metric definitions' events stay in the log (its feed
and audit) only: the relay carries the models' story.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from anyio import to_thread
from eventsourcing.persistence import Notification
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from commands.ports import Message, Publisher, PublishFailed
from processes.positions import record_relayed, relayed_position
from queries.models import history_item
from queries.ports import EventLog, LogUnavailable
from write_model.model import AIModel

log = logging.getLogger("modelledger.relay")

SOURCE = "/modelledger"
RELAY_NAME = "kafka"


def cloud_event(position: int, event: AIModel.Event) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode envelope; position and actor as extensions."""
    item = history_item(position, event)
    return {
        "specversion": "1.0",
        "id": f"{event.originator_id}/{event.originator_version}",
        "source": SOURCE,
        "type": item["type"],
        "time": item["timestamp"],
        "subject": str(event.originator_id),
        "datacontenttype": "application/json",
        "data": item["data"],
        "position": position,
        "actor": item["actor"],
        "modelversion": event.originator_version,
        "correlationid": item["correlation_id"],
        "causationid": item["causation_id"],
    }


@dataclass
class RelayOptions:
    batch_size: int = 500
    poll_seconds: float = 0.2
    retry_seconds: float = 2.0


@dataclass
class KafkaRelay:
    event_log: EventLog
    engine: Engine  # the read database, where the relay records its position
    publisher: Publisher
    options: RelayOptions = field(default_factory=RelayOptions)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    position: int = 0

    async def run(self) -> None:
        """Relay until ``stopping`` is set: the batch in flight is finished first."""
        while not self.stopping.is_set():
            try:
                await self._relay()
            except (PublishFailed, LogUnavailable, SQLAlchemyError) as error:
                log.warning("relay paused at position %d: %s", self.position, error)
                await self._pause(self.options.retry_seconds)

    async def _relay(self) -> None:
        await self.publisher.open()
        try:
            self.position = await to_thread.run_sync(self._recorded)
            while not self.stopping.is_set():
                page = await to_thread.run_sync(self._page)
                if not page:
                    await self._pause(self.options.poll_seconds)
                    continue
                await self.publisher.publish(self._messages(page))
                await to_thread.run_sync(self._record, page[-1].id)
        finally:
            with contextlib.suppress(PublishFailed):
                await self.publisher.close()

    def _messages(self, page: Sequence[Notification]) -> list[Message]:
        messages = []
        for notification in page:
            event = self.event_log.decode(notification)
            if isinstance(event, AIModel.Event):
                value = orjson.dumps(cloud_event(notification.id, event))
                messages.append((str(event.originator_id).encode(), value))
        return messages

    def _recorded(self) -> int:
        with self.engine.begin() as conn:
            return relayed_position(conn, RELAY_NAME)

    def _page(self) -> Sequence[Notification]:
        return self.event_log.page(self.position, self.options.batch_size)

    def _record(self, position: int) -> None:
        with self.engine.begin() as conn:
            record_relayed(conn, RELAY_NAME, position)
        self.position = position

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
