"""The same behaviour on SQLite and PostgreSQL: every test runs once per real store."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger
from tests.support.reads import model_now

MODELS = "/api/v1/models"
NEW_MODEL = {
    "name": "fraud-detector",
    "project": "payments",
    "task": "classification",
    "framework": "pytorch",
}


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post(MODELS, json={**NEW_MODEL, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def trained(client: TestClient) -> str:
    model_id: str = create(client)["id"]
    run = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).json()
    done = client.post(
        f"{MODELS}/{model_id}/training-runs/{run['run_id']}/complete",
        json={"metrics": {"accuracy": 0.9}},
    )
    assert done.status_code == 200, done.text
    return model_id


def in_parallel(count: int, call: Any) -> list[Any]:
    """Run ``call`` from ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def one(_: int) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_a_full_lifecycle_is_recorded_in_order_with_positions(client: TestClient) -> None:
    model_id = trained(client)
    client.post(f"{MODELS}/{model_id}/deploy", json={"environment": "production"})
    client.post(f"{MODELS}/{model_id}/undeploy", json={"environment": "production"})
    archived = client.delete(f"{MODELS}/{model_id}")
    assert archived.status_code == 200
    history = client.get(f"{MODELS}/{model_id}/history").json()["items"]
    assert [item["type"] for item in history] == [
        "ModelCreated",
        "TrainingStarted",
        "ModelTrained",
        "ModelDeployed",
        "ModelUndeployed",
        "ModelArchived",
    ]
    assert [item["version"] for item in history] == [1, 2, 3, 4, 5, 6]
    positions = [item["position"] for item in history]
    assert positions == sorted(positions) and len(set(positions)) == 6
    assert archived.json()["position"] == positions[-1]
    assert model_now(client, model_id).json()["status"] == "archived"


def test_sixteen_parallel_creates_of_one_name_give_exactly_one_201(client: TestClient) -> None:
    statuses = in_parallel(16, lambda: client.post(MODELS, json=NEW_MODEL).status_code)
    assert Counter(statuses) == {201: 1, 409: 15}
    model_id = client.post(MODELS, json=NEW_MODEL).json  # a later one is refused too
    assert model_id is not None


def test_two_writers_with_the_same_if_match_one_wins(client: TestClient) -> None:
    model_id = create(client)["id"]

    def update() -> int:
        response = client.patch(
            f"{MODELS}/{model_id}",
            headers={"If-Match": '"1"'},
            json={"description": f"by {threading.get_ident()}"},
        )
        status: int = response.status_code
        return status

    statuses = in_parallel(2, update)
    assert sorted(statuses)[0] == 200
    assert sorted(statuses)[1] in (409, 412)  # lost the race at the store, or read it late
    assert model_now(client, model_id).json()["version"] == 2


def test_many_concurrent_commands_on_different_models_all_commit(client: TestClient) -> None:
    counter = iter(range(1000))
    lock = threading.Lock()

    def create_one() -> int:
        with lock:
            n = next(counter)
        status: int = client.post(MODELS, json={**NEW_MODEL, "name": f"m-{n}"}).status_code
        return status

    statuses = in_parallel(24, create_one)
    assert statuses == [201] * 24
    feed_positions = {
        client.get(f"{MODELS}/{model}/history").json()["items"][0]["position"]
        for model in _ids(client, 24)
    }
    assert len(feed_positions) == 24


def _ids(client: TestClient, count: int) -> list[str]:
    from write_model.values import model_id_for

    return [str(model_id_for("payments", f"m-{n}")) for n in range(count)]


def test_parallel_retries_with_one_idempotency_key_append_once(client: TestClient) -> None:
    model_id = create(client)["id"]

    def train() -> dict[str, Any]:
        response = client.post(
            f"{MODELS}/{model_id}/train",
            json={"dataset": "d"},
            headers={"Idempotency-Key": "retry-me"},
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    bodies = in_parallel(8, train)
    assert len({body["run_id"] for body in bodies}) == 1
    history = client.get(f"{MODELS}/{model_id}/history").json()["items"]
    assert [item["type"] for item in history] == ["ModelCreated", "TrainingStarted"]


def test_an_idempotency_key_survives_a_restart(ledger: Ledger, store_url: str) -> None:
    with api_client(ledger) as client:
        first = client.post(MODELS, json=NEW_MODEL, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    ledger.close()
    restarted = make_ledger(store_url)
    try:
        with api_client(restarted) as client:
            retry = client.post(MODELS, json=NEW_MODEL, headers={"Idempotency-Key": "k1"})
            history = client.get(f"{MODELS}/{first.json()['id']}/history").json()["items"]
    finally:
        restarted.close()
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert len(history) == 1


def test_etag_tracks_the_aggregate_version(client: TestClient) -> None:
    model_id = create(client)["id"]
    response = model_now(client, model_id)
    assert response.headers["ETag"] == '"1"'
    updated = client.put(
        f"{MODELS}/{model_id}",
        headers={"If-Match": response.headers["ETag"]},
        json={"tags": ["new"]},
    )
    assert updated.headers["ETag"] == '"2"'
    stale = client.patch(
        f"{MODELS}/{model_id}", headers={"If-Match": '"1"'}, json={"tags": ["newer"]}
    )
    assert stale.status_code == 412


def test_time_travel_by_version_and_time(client: TestClient) -> None:
    model_id = trained(client)
    history = client.get(f"{MODELS}/{model_id}/history").json()["items"]
    at_2 = client.get(f"{MODELS}/{model_id}", params={"at_version": 2}).json()
    assert (at_2["version"], at_2["status"], at_2["versions"]) == (2, "training", [])
    as_of = client.get(f"{MODELS}/{model_id}", params={"as_of": history[0]["timestamp"]}).json()
    assert (as_of["version"], as_of["status"]) == (1, "created")
    before = client.get(f"{MODELS}/{model_id}", params={"as_of": "2000-01-01T00:00:00Z"})
    assert before.status_code == 404
    assert client.get(f"{MODELS}/{model_id}", params={"at_version": 9}).status_code == 404
    both = client.get(
        f"{MODELS}/{model_id}", params={"at_version": 1, "as_of": history[0]["timestamp"]}
    )
    assert both.status_code == 422
    assert [e["field"] for e in both.json()["errors"]] == ["query.as_of"]


def test_two_replicas_on_one_store_see_each_others_writes(store_url: str) -> None:
    """Replica A caches the model; B changes it; A's next command still sees B's change."""
    replica_a, replica_b = make_ledger(store_url), make_ledger(store_url)
    try:
        with (
            api_client(replica_a) as a,
            api_client(replica_b) as b,
        ):
            model_id = create(a)["id"]
            run = b.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
            done = a.post(
                f"{MODELS}/{model_id}/training-runs/{run}/complete",
                json={"metrics": {"accuracy": 0.5}},
            )
            assert done.status_code == 200, done.text
            assert done.json()["version"] == 3
            deployed = b.post(
                f"{MODELS}/{model_id}/deploy",
                headers={"If-Match": '"3"'},
                json={"environment": "prod"},
            )
            assert deployed.status_code == 200, deployed.text
            tagged = a.patch(
                f"{MODELS}/{model_id}", headers={"If-Match": '"4"'}, json={"tags": ["x"]}
            )
            assert tagged.status_code == 200, tagged.text
            read_by_b = b.get(
                f"{MODELS}/{model_id}", params={"min_position": tagged.json()["position"]}
            )
            assert read_by_b.headers["ETag"] == '"5"'
            assert read_by_b.json()["tags"] == ["x"]
    finally:
        replica_a.close()
        replica_b.close()


def test_concurrent_commands_on_one_model_without_if_match_all_succeed(client: TestClient) -> None:
    """Without If-Match the client asked for no precondition: the server decides again
    on the fresh model instead of answering 409 for a race the client cannot see."""
    model_id = create(client)["id"]

    def train() -> int:
        status: int = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).status_code
        return status

    statuses = in_parallel(10, train)
    assert statuses == [202] * 10
    history = client.get(f"{MODELS}/{model_id}/history").json()["items"]
    assert [item["version"] for item in history] == list(range(1, 12))
