"""The production topology, for real on this machine: PostgreSQL, Redis, a Kafka-protocol
broker, two API processes, one projection worker and one Kafka relay, all started here.
Processes are killed, the broker frozen and Redis cut off; nothing is lost or skipped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from modelledger.bootstrap import Ledger
from tests.support.auth import TEST_ADMIN_KEY
from tests.support.kafka_broker import (
    Broker,
    assert_every_event_in_order,
    consume,
    model_events_in_log,
    running_kafka,
)
from tests.support.ledgers import fresh_postgres_database, make_ledger
from tests.support.processes import ApiProcess, ModelLedgerProcess, free_port
from tests.support.redis_server import running_redis
from tests.support.tcp_proxy import TcpProxy, proxy_to

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MODELS = "/api/v1/models"
TOPIC = "modelledger.events"


class Topology:
    def __init__(self, workdir: Path, env: dict[str, str], redis: TcpProxy, broker: Broker):
        self.workdir, self.env, self.redis, self.broker = workdir, env, redis, broker
        self.replicas = [self._api(f"api-{n}") for n in (1, 2)]
        self.worker = ModelLedgerProcess(["project"], env, workdir, "worker")
        self.relay = ModelLedgerProcess(["relay"], env, workdir, "relay")

    def _api(self, name: str) -> ApiProcess:
        port = free_port()
        env = {**self.env, "MODELLEDGER_PORT": str(port), "MODELLEDGER_PROJECTIONS": "false"}
        return ApiProcess(
            ["serve", "--no-projections"], env, self.workdir, name, port, TEST_ADMIN_KEY
        )

    def start(self) -> None:
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            replica.wait_healthy()
        self.worker.start()
        self.relay.start()
        # Started last: queries wait (bounded) for positions only a running worker moves.
        self.replicas[0].wait_projections_held(self.worker)

    def stop(self) -> None:
        for process in (self.relay, self.worker, *self.replicas):
            process.stop()


@pytest.fixture
def topology(postgres_server: str, tmp_path: Path) -> Iterator[tuple[Topology, Ledger]]:
    database = fresh_postgres_database(postgres_server)
    with running_redis() as redis_url, running_kafka() as broker:
        target = urlsplit(redis_url)
        with proxy_to(target.hostname or "127.0.0.1", target.port or 6379) as redis:
            env = {
                "MODELLEDGER_DATABASE_URL": database,
                "MODELLEDGER_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
                "MODELLEDGER_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "MODELLEDGER_KAFKA_IDEMPOTENT": "false",  # tansu refuses InitProducerId
                "MODELLEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
                "MODELLEDGER_DATA_DIR": str(tmp_path / "data"),
                "MODELLEDGER_DB_POOL_SIZE": "5",
                "MODELLEDGER_RATE_LIMIT": "0",
            }
            running = Topology(tmp_path, env, redis, broker)
            log_reader = make_ledger(database)
            try:
                running.start()
                yield running, log_reader
            finally:
                running.stop()
                log_reader.close()


def create(http: httpx.Client, name: str) -> dict[str, Any]:
    body = {"name": name, "task": "classification", "framework": "pytorch"}
    answer = http.post(MODELS, json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def lifecycle(http: httpx.Client, name: str) -> int:
    """Create, train, complete: the position of the last event."""
    model_id = create(http, name)["id"]
    run = http.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
    done = http.post(
        f"{MODELS}/{model_id}/training-runs/{run}/complete", json={"metrics": {"accuracy": 0.9}}
    )
    assert done.status_code == 200, done.text
    position: int = done.json()["position"]
    return position


def eventually(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_the_topology_loses_nothing_when_its_parts_fail(
    topology: tuple[Topology, Ledger],
) -> None:
    running, log = topology
    first, second = running.replicas
    with first.client() as one, second.client() as two:
        # Commands through replica 1 are read on replica 2 (read-your-writes)
        position = lifecycle(one, "ryw")
        read = two.get(MODELS, params={"min_position": position, "q": "ryw"})
        assert read.status_code == 200, read.text
        assert [m["name"] for m in read.json()["items"]] == ["ryw"]

        # The worker is SIGKILLed mid-stream and restarted: nothing lost
        for n in range(10):
            lifecycle(one, f"w{n}")
        running.worker.kill()
        for n in range(10, 20):
            position = lifecycle(one, f"w{n}")
        running.worker.start()  # it takes over at once: the killed one's process is gone
        second.wait_projections_held(running.worker)
        asked = {"min_position": position, "limit": 100}
        eventually(lambda: two.get(MODELS, params=asked).status_code == 200, "worker back")
        listed = two.get(MODELS, params=asked).json()["items"]
        assert {m["name"] for m in listed} >= {f"w{n}" for n in range(20)}

        # The relay is SIGKILLed mid-stream and restarted: nothing skipped
        running.relay.kill()
        for n in range(5):
            lifecycle(one, f"r{n}")
        running.relay.start()

        # The broker stops answering (SIGSTOP) while commands go on, then comes back
        running.broker.freeze()
        try:
            for n in range(5):
                lifecycle(two, f"k{n}")
        finally:
            running.broker.thaw()

        # Redis is cut off: still serving; back: used again
        running.redis.down()
        assert lifecycle(two, "no-redis") > 0
        redis_state = one.get("/health/detailed").json()["redis"]["status"]
        assert redis_state == "down"
        running.redis.up()
        eventually(
            lambda: one.get("/health/detailed").json()["redis"]["status"] == "up",
            "replica 1 uses Redis again",
        )

        # Finally: a consumer group reads every event exactly as stored, in order per model
        stored = model_events_in_log(log)
        eventually(
            lambda: one.get("/health/detailed").json()["kafka"]["relays"]["kafka"]["lag"] == 0,
            "the relay catches up",
            seconds=90,
        )
        assert_every_event_in_order(consume(running.broker, TOPIC, len(stored)), stored)
