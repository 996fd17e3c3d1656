"""`kill -9` of `serve` (projections inside, as `make run` runs it) in the middle of
creates, then a restart on the same data: the new process takes the dead one's
projections at once, so every acknowledged model is readable within 2 s of /health
answering. Meanwhile an API replica on the same store says the projections have no
live holder. On SQLite and on PostgreSQL (``store_url``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from modelledger.bootstrap import Ledger
from projections.worker import PROJECTIONS
from read_model.state import projection_state
from tests.support.auth import TEST_ADMIN_KEY, api_client
from tests.support.ledgers import make_ledger
from tests.support.processes import ApiProcess, free_port

pytestmark = pytest.mark.slow
MODELS = "/api/v1/models"
NAMES = {p.name for p in PROJECTIONS}
READABLE_WITHIN_S = 2.0  # the promise, from /health answering


def serve(store_url: str, workdir: Path, name: str) -> ApiProcess:
    env = {
        "MODELLEDGER_DATABASE_URL": store_url,
        "MODELLEDGER_DATA_DIR": str(workdir / "data"),
        "MODELLEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
        "MODELLEDGER_RATE_LIMIT": "0",
        "MODELLEDGER_PORT": str(port := free_port()),
    }
    return ApiProcess(["serve"], env, workdir, name, port, TEST_ADMIN_KEY)


def model(n: int) -> dict[str, Any]:
    return {"name": f"m{n}", "task": "classification", "framework": "pytorch"}


class Creates:
    """Creates sent through a served process from a few threads, until it dies:
    the ids it acknowledged (201)."""

    def __init__(self, api: ApiProcess, threads: int = 3) -> None:
        self.acknowledged: list[str] = []
        self.last_position = 0
        self.numbers = iter(range(1_000_000))
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, args=(api,)) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _send(self, api: ApiProcess) -> None:
        with api.client() as client:
            while True:
                with self.lock:
                    n = next(self.numbers)
                try:
                    created = client.post(MODELS, json=model(n))
                except httpx.TransportError:
                    return  # the process is gone: this one was not acknowledged
                assert created.status_code == 201, created.text
                with self.lock:
                    self.acknowledged.append(created.json()["id"])
                    self.last_position = max(self.last_position, created.json()["position"])

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.acknowledged) < count:
            assert time.monotonic() < deadline, "creates did not get through"
            time.sleep(0.01)

    def join(self) -> list[str]:
        for thread in self.threads:
            thread.join(timeout=30)
        return list(self.acknowledged)


@pytest.fixture
def replica(store_url: str) -> Iterator[Ledger]:
    """An API replica on the same store that runs no projections (in this process)."""
    built = make_ledger(store_url, projections=False)
    yield built
    built.close()


def test_a_restart_after_kill_9_takes_over_at_once_and_health_says_who_is_missing(
    store_url: str, replica: Ledger, tmp_path: Path
) -> None:
    # Given `serve` running on a store, with creates in flight through it
    first = serve(store_url, tmp_path, "first").start()
    again = serve(store_url, tmp_path, "again")
    try:
        first.wait_healthy()
        creates = Creates(first)
        creates.wait_for(30)
        # When it is killed (SIGKILL) in the middle of them
        first.kill()
        acknowledged = creates.join()
        with api_client(replica) as other:
            # and a replica acknowledges more while nothing projects them
            for n in range(3):
                created = other.post(MODELS, json=model(-1 - n))
                assert created.status_code == 201, created.text
                acknowledged.append(created.json()["id"])
            last_position = created.json()["position"]
            # Then the replica's /health answers 200, degraded, naming every projection
            # as held by no live process
            health = other.get("/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert set(health.json()["lagging"]) == NAMES
            assert not any(p["holder_alive"] for p in health.json()["lagging"].values())
            detailed = other.get("/health/detailed").json()
            assert (detailed["status"], set(detailed["lagging"])) == ("degraded", NAMES)
            # and the admin report names the dead holder, not alive
            report = other.get("/api/v1/admin/projections").json()
            assert [(p["holder_alive"], f":{first.pid}:" in p["worker"]) for p in report] == [
                (False, True)
            ] * len(NAMES)

            # When `serve` is started again on the same data (however fast it starts:
            # the dead process's leases are made to last another hour)
            hold_for_an_hour(replica, report[0]["worker"])
            again.start()
            answered = again.wait_healthy()
            # Then within 2 s of /health answering the catalogue has every acknowledged
            # model (a read of one model would fold it from the log even without it)
            deadline = answered + READABLE_WITHIN_S
            assert catalogue_reaches(again, last_position, deadline), "projections stalled"
            unread = readable_by(again, acknowledged, deadline)
            assert unread == [], f"{len(unread)} of {len(acknowledged)} not readable in time"
            # and the replica's health is ok again once all are at the head, held by it
            assert eventually_ok(other), other.get("/health").json()
            report = other.get("/api/v1/admin/projections").json()
            assert all(f":{again.pid}:" in p["worker"] for p in report), report
    finally:
        again.stop()
        first.stop()


def hold_for_an_hour(ledger: Ledger, owner: str) -> None:
    with ledger.write_engine.begin() as conn:
        conn.execute(
            update(projection_state)
            .where(projection_state.c.owner == owner)
            .values(lease_until=time.time() + 3600)
        )


def eventually_ok(client: TestClient) -> bool:
    deadline = time.monotonic() + 30
    while client.get("/health").json()["status"] != "ok":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def catalogue_reaches(api: ApiProcess, position: int, deadline: float) -> bool:
    """Whether the catalogue answers at ``position`` or later by ``deadline``."""
    with api.client() as client:
        while time.monotonic() < deadline:
            if int(client.get(MODELS, params={"limit": 1}).headers["x-position"]) >= position:
                return True
            time.sleep(0.02)
    return False


def readable_by(api: ApiProcess, ids: list[str], deadline: float) -> list[str]:
    """The ids still not readable (404) at ``deadline`` (time.monotonic())."""
    unread = list(ids)
    with api.client() as client:
        while unread and time.monotonic() < deadline:
            unread = [i for i in unread if client.get(f"{MODELS}/{i}").status_code != 200]
            time.sleep(0.02)
    return unread
