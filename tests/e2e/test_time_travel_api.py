"""The registry as it stood at a past time, over HTTP, on SQLite and PostgreSQL:
search, statistics, top-performing and deployments with ``as_of``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from queries.tables import FINAL
from tests.e2e.problems import assert_problem

MODELS = "/api/v1/models"


class Registry:
    """Commands that remember the last position; reads that wait for it."""

    def __init__(self, client: TestClient) -> None:
        self.client, self.position = client, 0

    def send(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        self.position = max(self.position, answer["position"])
        return answer

    def trained(self, name: str, accuracy: float) -> str:
        body = {"name": name, "task": "classification", "framework": "jax", "tags": ["cv"]}
        model_id: str = self.send(MODELS, body, 201)["id"]
        self.train(model_id, accuracy)
        return model_id

    def train(self, model_id: str, accuracy: float) -> None:
        run = self.send(f"{MODELS}/{model_id}/train", {"dataset": "d"}, 202)["run_id"]
        complete = f"{MODELS}/{model_id}/training-runs/{run}/complete"
        self.send(complete, {"metrics": {"accuracy": accuracy}})

    def read(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params={**params, "min_position": self.position})
        assert response.status_code == 200, response.text
        assert int(response.headers["X-Position"]) >= self.position
        return response.json()


def a_moment() -> str:
    """A time strictly between what came before and what comes after."""
    time.sleep(0.002)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.002)
    return moment


def test_the_registry_answers_as_it_stood_at_a_past_time(client: TestClient) -> None:
    registry = Registry(client)
    # Given model a trained to 0.7 and serving production, at a moment called "then"
    a = registry.trained("a", 0.7)
    registry.send(f"{MODELS}/{a}/deploy", {"environment": "production"})
    then = a_moment()
    # and afterwards model b trained to 0.9, a better version of a, a moved to b in production
    b = registry.trained("b", 0.9)
    registry.train(a, 0.95)
    registry.send(f"{MODELS}/{a}/undeploy", {"environment": "production"})
    registry.send(f"{MODELS}/{b}/deploy", {"environment": "production"})
    # When the registry is asked as of then
    # Then search, statistics, the leaderboard and deployments all answer as they stood
    search = registry.read(f"{MODELS}/search", as_of=then)
    assert [(m["name"], m["latest_version"]) for m in search["items"]] == [("a", 1)]
    statistics = registry.read(f"{MODELS}/statistics", as_of=then)
    assert statistics["total_models"] == 1 and statistics["by_status"] == {"deployed": 1}
    assert statistics["active_deployments"] == {"production": 1}
    assert statistics["metrics"]["accuracy"]["max"] == 0.7
    top = registry.read(f"{MODELS}/top-performing", metric="accuracy", as_of=then)
    assert [(i["name"], i["value"]) for i in top["items"]] == [("a", 0.7)]
    serving = registry.read("/api/v1/deployments", environment="production", as_of=then)
    assert [(i["model_id"], i["model_version"]) for i in serving["items"]] == [(a, 1)]
    history = registry.read(f"{MODELS}/{a}/deployments", as_of=then)
    assert history["current"]["production"]["to_time"] is None
    # And now they answer with everything
    now = registry.read(f"{MODELS}/top-performing", metric="accuracy")
    assert [(i["name"], i["value"]) for i in now["items"]] == [("a", 0.95), ("b", 0.9)]
    serving = registry.read("/api/v1/deployments", environment="production")
    assert [i["model_id"] for i in serving["items"]] == [b]
    assert registry.read(f"{MODELS}/{a}/deployments")["current"] == {}


def test_before_anything_existed_the_registry_was_empty(client: TestClient) -> None:
    registry = Registry(client)
    registry.trained("a", 0.5)
    long_ago = "2001-01-01T00:00:00Z"
    assert registry.read(f"{MODELS}/search", as_of=long_ago) == {"items": [], "next_cursor": None}
    assert registry.read(f"{MODELS}/statistics", as_of=long_ago)["total_models"] == 0
    top = registry.read(f"{MODELS}/top-performing", metric="accuracy", as_of=long_ago)
    assert top["items"] == []


@pytest.mark.parametrize("end", ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59Z"])
def test_as_of_the_end_of_time_is_now(client: TestClient, end: str) -> None:
    # Given two trained models, one archived
    registry = Registry(client)
    registry.trained("a", 0.5)
    archived = registry.trained("b", 0.7)
    response = client.delete(f"{MODELS}/{archived}")
    assert response.status_code == 200, response.text
    registry.position = response.json()["position"]
    # When the registry is asked as of the last instant there is
    # Then it answers as it stands now
    for path, params in [
        (f"{MODELS}/search", {}),
        (f"{MODELS}/statistics", {}),
        (f"{MODELS}/top-performing", {"metric": "accuracy"}),
    ]:
        assert registry.read(path, as_of=end, **params) == registry.read(path, **params), path


@pytest.mark.parametrize(
    "path",
    [
        f"{MODELS}/search",
        f"{MODELS}/statistics",
        f"{MODELS}/top-performing?metric=accuracy",
        "/api/v1/deployments",
    ],
)
@pytest.mark.parametrize("as_of", ["2026-01-01T00:00:00", "yesterday", "2026-13-01T00:00:00Z"])
def test_an_as_of_without_a_zone_or_not_a_time_is_422(
    memory_client: TestClient, path: str, as_of: str
) -> None:
    response = memory_client.get(path, params={"as_of": as_of})
    assert_problem(response, 422, "query.as_of")


def final_answers(ledger: Ledger) -> list[Any]:
    keys: list[Any] = ledger.answers.keys()
    return [key[1:] for key in keys if key[0] == "timeline" and key[2] == FINAL]


def test_an_answer_about_a_settled_past_is_kept_and_a_recent_one_is_not(
    client: TestClient, ledger: Ledger
) -> None:
    registry = Registry(client)
    registry.trained("a", 0.5)
    # Given a time long before the latest event (it can no longer change) and one just now
    settled, recent = "2001-01-01T00:00:00+00:00", datetime.now(UTC).isoformat()
    # When statistics are asked as of each, twice
    for moment in (settled, recent):
        first = registry.read(f"{MODELS}/statistics", as_of=moment)
        assert registry.read(f"{MODELS}/statistics", as_of=moment) == first
    # Then only the settled answer is kept: a late event could still change the recent one
    kept = final_answers(ledger)
    assert len(kept) == 1 and b"2001-01-01" in kept[0][2][1]
