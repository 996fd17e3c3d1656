"""Rate limits shared through a real Redis by API replicas, and what happens without it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from adapters import redis_pause
from commands.keys import IssueKey, issue_key
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from tests.support.auth import api_client, bearer
from tests.support.ledgers import make_ledger
from tests.support.redis_server import running_redis
from tests.support.tcp_proxy import proxy_to
from write_model.access import Role

MODELS = "/api/v1/models"


def operator_key(ledger: Ledger) -> str:
    command = IssueKey(name="ops", role=Role.ADMIN)
    return issue_key(ledger.registry, command, CommandContext(actor="test")).text


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


def test_replicas_share_one_allowance_per_key_and_carry_on_when_redis_is_down(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_pause, "PAUSE_SECONDS", 0.2)
    target = urlsplit(redis_url)
    with proxy_to(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        # Given two API replicas counting in one Redis: 4 requests at once, then 1 a minute
        url = f"redis://127.0.0.1:{proxy.port}/0"
        settings = {"rate_limit": 1 / 60, "rate_limit_burst": 4, "redis_url": url}
        prefix = f"test-{uuid.uuid4().hex}"  # this test's own buckets in a shared server
        a, b = make_ledger("memory://", **settings), make_ledger("memory://", **settings)
        try:
            with api_client(a) as replica_a, api_client(b) as replica_b:
                for replica in (replica_a, replica_b):
                    replica.app.state.services.rate_limits.prefix = prefix  # type: ignore[attr-defined]
                # When one key sends 5 requests, alternating between the replicas
                sent = [(replica_a, replica_b)[i % 2].get(MODELS) for i in range(5)]
                # Then the fifth is refused: the allowance is the key's, not a replica's
                assert [r.status_code for r in sent] == [200, 200, 200, 200, 429]
                assert int(sent[4].headers["retry-after"]) > 1
                ops = bearer(operator_key(a))  # its own allowance, for looking at health
                assert replica_a.get("/health/detailed", headers=ops).json()["redis"] == {
                    "status": "up",
                    "latency_ms": pytest.approx(0, abs=500),
                }
                # When Redis cannot be reached
                proxy.down()
                # Then requests are still answered, each replica counting on its own
                assert replica_a.get(MODELS).status_code == 200
                # and detailed health says Redis is down, the service degraded, not failed
                health = replica_a.get("/health/detailed", headers=ops)
                assert health.status_code == 200
                assert (health.json()["status"], health.json()["redis"]["status"]) == (
                    "degraded",
                    "down",
                )
                # When Redis is back, the shared count is used again
                proxy.up()
                time.sleep(0.3)
                assert replica_b.get(MODELS).status_code == 429
        finally:
            a.close()
            b.close()
