"""Gets of one model answered from what the API process holds (queries.model_answers):
the same answer the tables give, never older than the process has seen, never to a
key that may not see it."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.conftest import make_ledger
from tests.support.auth import api_client, bearer

MODELS = "/api/v1/models"


def held_at(ledger: Ledger, position: int) -> None:
    """Until the process holds the answers at ``position`` and at least as far as it
    has seen the catalogue (other events, an API key's, move the catalogue on too)."""
    deadline = time.monotonic() + 5
    while True:
        seen = ledger.answers.seen("catalogue")
        if seen is not None and ledger.model_answers.position >= max(position, seen.position):
            return
        assert time.monotonic() < deadline, "the process never took in the change"
        time.sleep(0.01)


def create(client: TestClient, name: str, project: str) -> dict[str, Any]:
    body = {"name": name, "project": project, "task": "t", "framework": "f"}
    created = client.post(MODELS, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_a_model_is_answered_from_memory_as_the_tables_answer_it(store_url: str) -> None:
    ledger = make_ledger(store_url)
    from_tables = make_ledger(store_url, projections=False, model_answers_size=0)
    try:
        with api_client(ledger) as http, api_client(from_tables) as tables:
            # Given a model, taken in by the process
            model = create(http, "fraud-detector", "fraud")
            held_at(ledger, model["position"])
            hits = ledger.model_answers.hits
            # When it is read
            got = http.get(f"{MODELS}/{model['id']}")
            # Then it is answered from memory, with the tables' body and ETag
            assert ledger.model_answers.hits == hits + 1
            expected = tables.get(f"{MODELS}/{model['id']}", params={"min_position": 1})
            assert got.status_code == expected.status_code == 200
            assert got.json() == expected.json()
            assert got.headers["etag"] == expected.headers["etag"] == '"1"'
            assert int(got.headers["x-position"]) >= model["position"]
            assert 'model_answer_lookups_total{result="hit"}' in http.get("/metrics").text
    finally:
        ledger.close()
        from_tables.close()


def test_a_change_is_read_at_once_and_then_from_memory(store_url: str) -> None:
    ledger = make_ledger(store_url)
    try:
        with api_client(ledger) as http:
            model = create(http, "ranker", "search")
            held_at(ledger, model["position"])
            # When the model changes
            url = f"{MODELS}/{model['id']}"
            changed = http.patch(url, json={"description": "now with bm25"}).json()
            # Then a read at its position has the change, wherever it is answered from
            read = http.get(url, params={"min_position": changed["position"]})
            assert read.json()["description"] == "now with bm25"
            assert read.headers["etag"] == '"2"'
            # and once the process has taken it in, a plain read has it from memory
            held_at(ledger, changed["position"])
            hits = ledger.model_answers.hits
            again = http.get(url)
            assert again.json()["description"] == "now with bm25"
            assert ledger.model_answers.hits == hits + 1
    finally:
        ledger.close()


def test_a_held_model_stays_hidden_from_a_key_of_another_project(store_url: str) -> None:
    ledger = make_ledger(store_url, key_cache_seconds=0)
    try:
        with api_client(ledger) as admin:
            model = create(admin, "churn", "retention")
            key = admin.post(
                "/api/v1/admin/keys", json={"name": "vision-bot", "role": "viewer",
                                             "projects": ["vision"]},
            ).json()["key"]  # fmt: skip
            held_at(ledger, model["position"])
            hits = ledger.model_answers.hits
            # When a key for another project asks for the held model
            for _ in range(3):
                hidden = admin.get(f"{MODELS}/{model['id']}", headers=bearer(key))
                # Then it is not found: its project is read from the log before memory
                assert hidden.status_code == 404
                assert hidden.headers["content-type"] == "application/problem+json"
            assert ledger.model_answers.hits == hits
            # while the admin's read of it is answered from memory
            assert admin.get(f"{MODELS}/{model['id']}").status_code == 200
            assert ledger.model_answers.hits == hits + 1
    finally:
        ledger.close()


def test_models_beyond_the_capacity_are_read_from_the_tables(store_url: str) -> None:
    ledger = make_ledger(store_url, model_answers_size=1)
    try:
        with api_client(ledger) as http:
            first = create(http, "first", "p")
            second = create(http, "second", "p")
            held_at(ledger, second["position"])
            # When both are read, only one of them held
            answers = [http.get(f"{MODELS}/{m['id']}") for m in (first, second)]
            # Then both answer in full
            assert [a.json()["name"] for a in answers] == ["first", "second"]
            assert len(ledger.model_answers.entries) == 1
            assert ledger.model_answers.misses >= 1
    finally:
        ledger.close()
