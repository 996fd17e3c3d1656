"""No N+1: a page of models with their versions, deployments and best metrics costs the
same few SQL statements whatever its size, on SQLite and PostgreSQL (the DataLoaders
batch each nested field into one read)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.support.graphql import data_of

MODELS = "/api/v1/models"
PAGE = """query($first: Int!, $at: Int!) {
  models(first: $first, minPosition: $at) {
    nodes {
      name bestMetrics { metric value }
      versions { number metrics { name value } trainingRun { dataset } }
      deployments { current { environment modelVersion } history { environment } }
      configuration
    }
  }
}"""


def send(client: TestClient, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def a_deployed_model(client: TestClient, index: int) -> int:
    body = {"name": f"m{index:03}", "task": "classification", "framework": "jax"}
    model_id = send(client, MODELS, body, 201)["id"]
    run = send(client, f"{MODELS}/{model_id}/train", {"dataset": f"d{index}"}, 202)["run_id"]
    complete = f"{MODELS}/{model_id}/training-runs/{run}/complete"
    send(client, complete, {"metrics": {"accuracy": index / 100}}, 200)
    deployed = send(client, f"{MODELS}/{model_id}/deploy", {"environment": "production"}, 200)
    return int(deployed["position"])


def _reads_rows(statement: str) -> bool:
    """A read of the tables' rows (not a transaction's BEGIN, nor the projections' state,
    which a read asks again while it waits for a position)."""
    return statement.lstrip().upper().startswith("SELECT") and "projection_state" not in statement


@contextmanager
def statements_of_requests(engine: Engine) -> Iterator[list[str]]:
    """The statements the request's reads send (the threads reads run in; not those of
    the projections, which follow the log on threads of their own)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        statement: str = args[2]
        if threading.current_thread().name == "AnyIO worker thread" and _reads_rows(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_bigger_page_costs_no_more_statements(client: TestClient) -> None:
    # Given 50 trained, deployed models
    at = max(a_deployed_model(client, index) for index in range(50))
    engine = client.app.state.services.tables.engine  # type: ignore[attr-defined]
    costs = {}
    data_of(client, PAGE, first=3, at=at)  # (reads once what a process reads once)
    for first in (5, 50):
        with statements_of_requests(engine) as seen:
            found = data_of(client, PAGE, first=first, at=at)
        nodes = found["models"]["nodes"]
        # Then every model comes whole ...
        assert len(nodes) == first
        assert all(n["versions"][0]["trainingRun"]["dataset"] for n in nodes)
        assert all(n["deployments"]["current"][0]["environment"] == "production" for n in nodes)
        costs[first] = len(seen)
    # ... and fifty cost what five do: a fixed number of statements
    assert costs[50] == costs[5], costs
    # the search, the models' resources, their deployments, the directions they rank with
    assert costs[5] <= 4, costs
