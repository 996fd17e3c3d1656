"""The Kafka relay: every model event, in log order, to a topic, as CloudEvents 1.0 JSON.

The relay reads the log after the position it recorded, sends a batch, waits
until Kafka has acknowledged all of it (acks=all), then records the batch's last
position. A restart resumes from there: nothing is skipped. A crash between the
acknowledgement and the record re-sends that one batch; its events carry the
same ``id`` (``<model id>/<version>``), so consumers can drop the repeats.

Messages are keyed by model id, so each model's events stay in order within
their partition. API keys' events stay in the log (and its audit) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from anyio import to_thread
from eventsourcing.persistence import Notification
from sqlalchemy import Engine

from commands.ports import StoreUnavailable
from commands.registry import ModelRegistry, store_errors
from queries.models import history_item
from read_model.relay import record_relayed, relayed_position
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
    bootstrap_servers: str
    topic: str = "modelledger.events"
    partitions: int = 6  # when the relay creates the topic
    batch_size: int = 500
    idempotent: bool = True
    poll_seconds: float = 0.2
    retry_seconds: float = 2.0
    request_timeout_ms: int = 10_000


@dataclass
class KafkaRelay:
    registry: ModelRegistry
    engine: Engine  # the read database, where the relay records its position
    options: RelayOptions
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    position: int = 0

    async def run(self) -> None:
        """Relay until ``stopping`` is set: the batch in flight is finished first."""
        while not self.stopping.is_set():
            try:
                await self._relay_with(self._producer())
            except (KafkaError, OSError, StoreUnavailable) as error:
                log.warning("relay paused at position %d: %s", self.position, error)
                await self._pause(self.options.retry_seconds)

    async def ensure_topic(self) -> None:
        """Create the topic when the cluster lacks it (clusters often refuse to auto-create)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.options.bootstrap_servers,
            request_timeout_ms=self.options.request_timeout_ms,
        )
        await admin.start()
        try:
            if self.options.topic not in await admin.list_topics():
                topic = NewTopic(self.options.topic, self.options.partitions, replication_factor=1)
                await admin.create_topics([topic])
        except TopicAlreadyExistsError:
            pass  # another relay made it first
        finally:
            await admin.close()

    async def _relay_with(self, producer: AIOKafkaProducer) -> None:
        await self.ensure_topic()
        await producer.start()
        try:
            self.position = await to_thread.run_sync(self._recorded)
            while not self.stopping.is_set():
                page = await to_thread.run_sync(self._page)
                if not page:
                    await self._pause(self.options.poll_seconds)
                    continue
                await self._send(producer, page)
                await to_thread.run_sync(self._record, page[-1].id)
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, page: Sequence[Notification]) -> None:
        sent = []
        for notification in page:
            event = self.registry.mapper.to_domain_event(notification)
            if isinstance(event, AIModel.Event):
                value = orjson.dumps(cloud_event(notification.id, event))
                key = str(event.originator_id).encode()
                sent.append(await producer.send(self.options.topic, value=value, key=key))
        await asyncio.gather(*sent)  # every one acknowledged, or the batch is sent again

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.options.bootstrap_servers,
            acks="all",
            enable_idempotence=self.options.idempotent,
            linger_ms=5,
            max_batch_size=1 << 20,
            request_timeout_ms=self.options.request_timeout_ms,
            client_id="modelledger-relay",
        )

    def _recorded(self) -> int:
        with self.engine.begin() as conn:
            return relayed_position(conn, RELAY_NAME)

    def _page(self) -> Sequence[Notification]:
        with store_errors():
            return self.registry.recorder.select_notifications(
                start=self.position, limit=self.options.batch_size, inclusive_of_start=False
            )

    def _record(self, position: int) -> None:
        with self.engine.begin() as conn:
            record_relayed(conn, RELAY_NAME, position)
        self.position = position

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
