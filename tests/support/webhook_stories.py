"""The steps a webhook subscriber's story takes through the API, and what it checks of
the deliveries (the fixtures: tests/e2e/webhooks/conftest.py)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from queries.webhooks import deliveries_page
from tests.support.webhook_receiver import Delivery, WebhookReceiver

HOOKS = "/api/v1/admin/webhooks"
SECRETS_KEY = Fernet.generate_key().decode()
PATIENT = "0" + ",0.3" * 60  # retries every 0.3 s, for a minute: never gives up in a test


def subscribe(api: TestClient, receiver: WebhookReceiver, **fields: Any) -> dict[str, Any]:
    answer = api.post(HOOKS, json={"url": receiver.url, **fields})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    assert made["secret"].startswith("whsec_")
    receiver.secrets.append(made["secret"])
    return made


def a_model(api: TestClient, name: str, project: str = "fraud") -> str:
    answer = api.post(
        "/api/v1/models",
        json={"name": name, "project": project, "task": "classification", "framework": "sk"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def trained_and_deployed(api: TestClient, model_id: str) -> None:
    run = api.post(f"/api/v1/models/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
    done = api.post(
        f"/api/v1/models/{model_id}/training-runs/{run}/complete",
        json={"metrics": {"accuracy": 0.9}},
    )
    assert done.status_code == 200, done.text
    deployed = api.post(f"/api/v1/models/{model_id}/deploy", json={"environment": "prod"})
    assert deployed.status_code == 200, deployed.text


def signed_by(deliveries: list[Delivery], secret: str) -> list[Delivery]:
    return [d for d in deliveries if secret in d.verified_by]


def in_order_per_model(deliveries: list[Delivery]) -> dict[str, list[int]]:
    """Each model's positions in arrival order (first arrivals: repeats left out)."""
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for delivery in deliveries:
        if delivery.message_id not in seen:
            seen.add(delivery.message_id)
            order[delivery.data["model_id"]].append(delivery.data["position"])
    return dict(order)


def deliveries_of(api: TestClient, webhook_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"{HOOKS}/{webhook_id}/deliveries", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def states_in_queue(ledger: Ledger, webhook_id: str) -> list[str]:
    """What the deliverer's queue holds for a subscription (its API is gone once deleted)."""
    with ledger.read_engine.connect() as conn:
        items = deliveries_page(conn, webhook_id, before=None, limit=100)["items"]
    return [item["state"] for item in items]


def wait_until(check: Any, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
