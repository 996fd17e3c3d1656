"""/health, /health/detailed and the admin report agree on which projections lag: those
no live process holds, and those whose oldest unprojected event is older than
MODELLEDGER_HEALTH_MAX_LAG_SECONDS. /health still answers 200 (load balancers read
it). On SQLite and on PostgreSQL (``store_url``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from modelledger.bootstrap import Ledger
from projections.worker import PROJECTIONS
from read_model.holders import holder_identity
from read_model.state import projection_state
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger
from tests.support.reads import MODELS

NAMES = {p.name for p in PROJECTIONS}
MAX_LAG_S = 0.2


@pytest.fixture
def service(store_url: str) -> Iterator[tuple[Ledger, TestClient]]:
    """A service whose projections run nowhere unless a test says who holds them."""
    ledger = make_ledger(store_url, projections=False, health_max_lag_seconds=MAX_LAG_S)
    with api_client(ledger) as client:
        yield ledger, client
    ledger.close()


def set_states(ledger: Ledger, **values: Any) -> None:
    with ledger.write_engine.begin() as conn:
        conn.execute(update(projection_state).values(**values))


def views(client: TestClient) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """/health, /health/detailed and the admin report."""
    health = client.get("/health")
    assert health.status_code == 200, health.text
    detailed = client.get("/health/detailed").json()
    return health.json(), detailed, client.get("/api/v1/admin/projections").json()


def test_health_names_projections_nobody_holds_and_those_behind_by_more_than_the_max_lag(
    service: tuple[Ledger, TestClient],
) -> None:
    ledger, client = service
    # Given projections at the head that no process holds
    health, detailed, report = views(client)
    # Then each view says so: degraded, every projection named, no live holder
    assert (health["status"], detailed["status"]) == ("degraded", "degraded")
    assert set(health["lagging"]) == set(detailed["lagging"]) == NAMES
    assert [(p["holder_alive"], p["lag_seconds"]) for p in report] == [(False, 0.0)] * len(NAMES)

    # Given a live process (this one) holds them, but has not projected a model created
    # more than the max lag ago
    set_states(ledger, owner=holder_identity(), lease_until=time.time() + 3600)
    created = client.post(MODELS, json={"name": "m", "task": "t", "framework": "f"})
    head = created.json()["position"]
    time.sleep(MAX_LAG_S * 1.5)
    health, detailed, report = views(client)
    # Then they lag by the age of that event, held by a live process: degraded
    assert (health["status"], detailed["status"]) == ("degraded", "degraded")
    assert set(health["lagging"]) == set(detailed["lagging"]) == NAMES
    assert all(p["holder_alive"] and p["lag_seconds"] > MAX_LAG_S for p in report), report
    assert all(p["lag"] == head for p in report)

    # When they reach the head
    set_states(ledger, position=head)
    health, detailed, report = views(client)
    # Then nothing lags: ok
    assert (health["status"], health["lagging"]) == ("ok", {})
    assert (detailed["status"], detailed["lagging"]) == ("ok", {})
    assert all(p["holder_alive"] and p["lag_seconds"] == 0.0 for p in report), report
