"""Projection positions announced through a real Redis wake other processes' reads,
and the subscription comes back after Redis does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from adapters import redis_pause
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger
from tests.support.redis_server import running_redis
from tests.support.tcp_proxy import proxy_to

MODELS = "/api/v1/models"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


def test_workers_announce_positions_that_wake_other_processes(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_pause, "PAUSE_SECONDS", 0.2)
    target = urlsplit(redis_url)
    store = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with proxy_to(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        shared = {"redis_url": f"redis://127.0.0.1:{proxy.port}/0"}
        worker = make_ledger(store, **shared)  # its projections commit and announce
        listener = make_ledger(store, projections=False, **shared)  # reads nothing itself
        try:
            subscriber = listener.follow_announcements()
            assert subscriber is not None and subscriber.connected.wait(5)
            with api_client(worker) as writer:
                # When the worker's catalogue commits a new model
                created = writer.post(MODELS, json={"name": "m", "task": "t", "framework": "f"})
                position = created.json()["position"]
                # Then the other process hears of it, without reading the database
                listener.positions.wait_for("catalogue", position, timeout=5)
                heard = listener.positions.seen_at["catalogue"].position
                assert heard >= position
                # When Redis goes away and comes back, the subscription resumes
                proxy.down()
                writer.post(MODELS, json={"name": "n", "task": "t", "framework": "f"})
                deadline = time.monotonic() + 5
                while subscriber.connected.is_set():  # it notices the loss
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                proxy.up()
                assert subscriber.connected.wait(5)
                # (an announcement made while it resubscribes may be missed: it is a
                # wake-up, not the record; so go on committing until one is heard)
                deadline = time.monotonic() + 10
                while True:
                    body = {"name": f"o{time.monotonic_ns()}", "task": "t", "framework": "f"}
                    later = writer.post(MODELS, json=body)
                    position = later.json()["position"]
                    listener.positions.wait_for("catalogue", position, timeout=0.5)
                    if listener.positions.seen_at["catalogue"].position >= position:
                        break
                    assert time.monotonic() < deadline, "announcements never resumed"
        finally:
            worker.close()
            listener.close()
