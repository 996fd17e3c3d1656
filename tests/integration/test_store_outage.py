"""PostgreSQL goes away: commands and reads answer 503 problem+json, nothing is lost,
and the service recovers by itself when the database is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from tests.support.auth import api_client
from tests.support.ledgers import fresh_postgres_database, make_ledger
from tests.support.reads import model_now
from tests.support.tcp_proxy import proxy_to

MODELS = "/api/v1/models"
NEW = {"name": "m", "task": "classification", "framework": "pytorch"}


def recovers_within(seconds: float, healthy: Callable[[], bool]) -> bool:
    """The pool reconnects with backoff: poll (bounded) instead of expecting it at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthy():
            return True
        time.sleep(0.2)
    return False


def test_postgres_outage_gives_503_and_the_service_recovers(postgres_server: str) -> None:
    direct = urlsplit(fresh_postgres_database(postgres_server))
    with proxy_to(direct.hostname or "127.0.0.1", direct.port or 5432) as proxy:
        via_proxy = urlunsplit(
            direct._replace(
                netloc=f"{direct.username}:{direct.password or ''}@127.0.0.1:{proxy.port}"
            )
        )
        ledger = make_ledger(via_proxy, db_connect_timeout=1)
        try:
            with api_client(ledger) as client:
                model_id = client.post(MODELS, json=NEW).json()["id"]

                # Given the database is unreachable
                proxy.down()
                started = time.monotonic()
                # When a client sends a command, reads, and asks for health
                command = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"})
                command_seconds = time.monotonic() - started
                created = client.post(MODELS, json={**NEW, "name": "other"})
                asked = time.monotonic()
                health = client.get("/health")
                health_seconds = time.monotonic() - asked  # a load balancer's probe waits
                # Then each is a 503 problem, soon
                for response in (command, created, health):
                    assert response.status_code == 503, response.text
                assert command.headers["content-type"].startswith("application/problem+json")
                assert command.json()["type"] == "urn:modelledger:problem:unavailable"
                assert command.headers["Retry-After"] == "1"
                assert command_seconds < 20
                assert health_seconds < 8  # one connect timeout, not the log's read retries

                # When the database is back, the same requests work, and nothing was half-done
                proxy.up()
                assert recovers_within(30, lambda: client.get("/health").status_code == 200)
                retried = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"})
                assert retried.status_code == 202, retried.text
                history = client.get(f"{MODELS}/{model_id}/history").json()["items"]
                assert [item["type"] for item in history] == ["ModelCreated", "TrainingStarted"]
        finally:
            ledger.close()


def test_a_database_restart_that_breaks_every_connection_fails_no_request(
    postgres_server: str,
) -> None:
    direct = urlsplit(fresh_postgres_database(postgres_server))
    with proxy_to(direct.hostname or "127.0.0.1", direct.port or 5432) as proxy:
        via_proxy = urlunsplit(
            direct._replace(
                netloc=f"{direct.username}:{direct.password or ''}@127.0.0.1:{proxy.port}"
            )
        )
        ledger = make_ledger(via_proxy, db_pool_size=4, db_connect_timeout=1)
        try:
            with api_client(ledger) as client:
                model_id = client.post(MODELS, json=NEW).json()["id"]
                for _ in range(3):  # fill the pool with open connections
                    client.get(f"{MODELS}/{model_id}/history")
                # Given every pooled connection was cut (a restart), and the database is back
                proxy.down()
                proxy.up()
                # When clients go on, then nothing fails
                statuses = [
                    client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).status_code,
                    client.get(f"{MODELS}/{model_id}/history").status_code,
                    model_now(client, model_id).status_code,
                    client.get("/health").status_code,
                ]
                assert statuses == [202, 200, 200, 200]
        finally:
            ledger.close()
