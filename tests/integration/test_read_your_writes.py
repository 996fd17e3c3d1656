"""Reading one model right after changing it: the model, its versions and its deployments
reflect every command on it acknowledged before the read, through any API process, with
no position passed. (Search, statistics and leaderboards stay eventually consistent and
take ``min_position``.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.support.auth import api_client, bearer
from tests.support.ledgers import make_ledger

MODELS = "/api/v1/models"
KEYS = "/api/v1/admin/keys"
ROUNDS = 4


@pytest.fixture
def two_processes(
    store_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, TestClient, Ledger]]:
    """Two API processes on one store: the first runs the projections (as `serve`
    does), the second is a replica that only reads their tables (and the log). The
    replica waits for a table as long as the default bound (on a loaded machine the
    first process's projections may take more than half a second to commit), unless a
    story that waits in vain asks for less."""
    first = make_ledger(store_url)
    waits = getattr(request, "param", 5.0)
    second = make_ledger(store_url, projections=False, min_position_timeout=waits)
    try:
        with api_client(first) as one, api_client(second) as two:
            yield one, two, first
    finally:
        first.close()
        second.close()


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def read_back(http: TestClient, model_id: str) -> tuple[dict[str, Any], ...]:
    model = ok(http.get(f"{MODELS}/{model_id}"))
    versions = ok(http.get(f"{MODELS}/{model_id}/versions"))
    deployments = ok(http.get(f"{MODELS}/{model_id}/deployments"))
    return model, versions, deployments


def test_each_change_is_read_back_at_once_through_either_process(
    two_processes: tuple[TestClient, TestClient, Ledger],
) -> None:
    one, two, _ = two_processes
    for n in range(ROUNDS):
        writer, reader = (one, two) if n % 2 else (two, one)
        # Given a model created through one process and read at once through the other
        created = ok(writer.post(MODELS, json=model_body(n)), 201)
        model_id = created["id"]
        model, versions, deployments = read_back(reader, model_id)
        assert (model["status"], model["version"]) == ("created", 1)
        assert versions["items"] == [] and deployments["current"] == {}

        # When it is trained: running, then trained with version 1
        run = ok(writer.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}), 202)
        assert ok(reader.get(f"{MODELS}/{model_id}"))["status"] == "training"
        done = f"{MODELS}/{model_id}/training-runs/{run['run_id']}/complete"
        ok(writer.post(done, json={"metrics": {"accuracy": 0.5 + n / 100}}))
        model, versions, _ = read_back(reader, model_id)
        assert (model["status"], model["latest_version"]) == ("trained", 1)
        assert [v["number"] for v in versions["items"]] == [1]

        # Then deployed: the very next read says so, everywhere
        deployed = ok(writer.post(f"{MODELS}/{model_id}/deploy", json={"environment": "prod"}))
        model, _, deployments = read_back(reader, model_id)
        assert model["status"] == "deployed"
        assert model["version"] == deployed["version"]
        assert reader.get(f"{MODELS}/{model_id}").headers["etag"] == f'"{deployed["version"]}"'
        assert deployments["current"]["prod"]["model_version"] == 1

        # And archived after an undeploy: the writer's own next read too
        ok(writer.post(f"{MODELS}/{model_id}/undeploy", json={"environment": "prod"}))
        ok(writer.delete(f"{MODELS}/{model_id}"))
        for http in (writer, reader):
            model, _, deployments = read_back(http, model_id)
            assert model["status"] == "archived"
            assert deployments["current"] == {}


@pytest.mark.parametrize("two_processes", [0.5], indirect=True)  # (it waits in vain)
def test_while_the_tables_lag_a_model_is_read_from_the_log_as_the_tables_would_answer(
    two_processes: tuple[TestClient, TestClient, Ledger],
) -> None:
    one, two, first = two_processes
    # Given the projections stopped, and a model changed through one process
    assert first.worker is not None
    first.worker.stop()
    first.worker = None
    created = ok(one.post(MODELS, json=model_body(0)), 201)
    model_id = created["id"]
    run = ok(one.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}), 202)
    done = f"{MODELS}/{model_id}/training-runs/{run['run_id']}/complete"
    ok(one.post(done, json={"metrics": {"loss": 0.25}}))
    last = ok(one.post(f"{MODELS}/{model_id}/deploy", json={"environment": "prod"}))
    assert int(two.get(MODELS).headers["x-position"]) < last["position"]  # the tables lag
    # When it is read through the other process, it is folded from the log at once
    from_the_log = two.get(f"{MODELS}/{model_id}")
    assert from_the_log.headers["x-position"] == str(last["position"])
    assert ok(from_the_log)["status"] == "deployed"
    # and /versions waits for its tables, then says which change they lack (503)
    behind = two.get(f"{MODELS}/{model_id}/versions")
    assert behind.status_code == 503
    assert "last change" in behind.json()["detail"] and "errors" not in behind.json()
    # Then once the tables have it, they answer exactly what the log did
    first.start_projections()
    from_tables = one.get(f"{MODELS}/{model_id}", params={"min_position": last["position"]})
    assert ok(from_tables) == ok(from_the_log)


def test_an_unknown_model_is_not_found_at_once(
    two_processes: tuple[TestClient, TestClient, Ledger],
) -> None:
    one, _, _ = two_processes
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in ("", "/versions", "/deployments"):
        answer = one.get(f"{MODELS}/{unknown}{path}")
        assert answer.status_code == 404, answer.text


def model_body(n: int) -> dict[str, Any]:
    return {"name": f"ryw-{n}", "task": "classification", "framework": "pytorch"}


def test_a_model_a_key_may_not_see_is_not_found_like_no_model_while_the_tables_lag(
    two_processes: tuple[TestClient, TestClient, Ledger],
) -> None:
    one, two, first = two_processes
    # Given a viewer of project alpha, and a model of project beta the tables do not have yet
    viewer = {"name": "alpha-viewer", "role": "viewer", "projects": ["alpha"]}
    key = ok(one.post(KEYS, json=viewer), 201)
    assert first.worker is not None
    first.worker.stop()
    first.worker = None
    hidden = ok(one.post(MODELS, json={**model_body(0), "project": "beta"}), 201)["id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    for path, params in READS_OF_ONE_MODEL:
        # When the viewer reads it, and a model that does not exist
        answers = [
            two.get(f"{MODELS}/{i}{path}", params=params, headers=bearer(key["key"]))
            for i in (hidden, unknown)
        ]
        # Then both answers say the very same thing but the id (at once: no wait for tables)
        assert [a.status_code for a in answers] == [404, 404], (path, params)
        hidden_said, unknown_said = (a.json() for a in answers)
        assert hidden_said["detail"] == unknown_said["detail"].replace(unknown, hidden)
        assert [e["field"] for e in hidden_said["errors"]] == ["model_id"]
        assert [e["field"] for e in unknown_said["errors"]] == ["model_id"]


READS_OF_ONE_MODEL: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("", {"min_position": 2}),
    ("/versions", {}),
    ("/deployments", {}),
]
