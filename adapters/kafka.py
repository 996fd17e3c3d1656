"""Kafka, as a place to publish the log's events (commands.ports.Publisher).

Every message of a batch is acknowledged by all in-sync replicas (acks=all) before
``publish`` returns; any failure of the client becomes ``PublishFailed`` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from commands.ports import Message, PublishFailed


@dataclass
class KafkaOptions:
    bootstrap_servers: str
    topic: str = "modelledger.events"
    partitions: int = 6  # when the topic is created here
    idempotent: bool = True
    request_timeout_ms: int = 10_000


class KafkaPublisher:
    def __init__(self, options: KafkaOptions) -> None:
        self.options = options
        self._producer: AIOKafkaProducer | None = None

    @property
    def destination(self) -> str:
        return f"{self.options.bootstrap_servers} topic {self.options.topic}"

    async def open(self) -> None:
        try:
            await self._ensure_topic()
            self._producer = self._new_producer()
            await self._producer.start()
        except (KafkaError, OSError) as error:
            await self.close()
            raise PublishFailed(str(error) or type(error).__name__) from error

    async def publish(self, messages: Sequence[Message]) -> None:
        assert self._producer is not None, "open() first"
        sent: list[asyncio.Future[object]] = []
        try:
            for key, value in messages:
                sent.append(await self._producer.send(self.options.topic, value=value, key=key))
            await asyncio.gather(*sent)  # every one acknowledged, or the batch is sent again
        except (KafkaError, OSError) as error:
            # What was sent before the failure is settled, not left to warn unawaited.
            await asyncio.gather(*sent, return_exceptions=True)
            raise PublishFailed(str(error) or type(error).__name__) from error

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except (KafkaError, OSError) as error:
                raise PublishFailed(str(error) or type(error).__name__) from error

    async def _ensure_topic(self) -> None:
        """Create the topic when the cluster lacks it (clusters often refuse to auto-create)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.options.bootstrap_servers,
            request_timeout_ms=self.options.request_timeout_ms,
        )
        try:
            await admin.start()
            if self.options.topic not in await admin.list_topics():
                topic = NewTopic(self.options.topic, self.options.partitions, replication_factor=1)
                await admin.create_topics([topic])
        except TopicAlreadyExistsError:
            pass  # another relay made it first
        finally:
            await admin.close()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.options.bootstrap_servers,
            acks="all",
            enable_idempotence=self.options.idempotent,
            linger_ms=5,
            max_batch_size=1 << 20,
            request_timeout_ms=self.options.request_timeout_ms,
            client_id="modelledger-relay",
        )
