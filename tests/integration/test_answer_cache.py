"""Gets of one model answered from the process's answer cache (queries.answers): the
same answer the tables give, only at the version the log says the model is at, never
to a key that may not see it; a cache too small to hold an answer still answers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from queries.answers import Answer
from tests.support.auth import api_client, bearer
from tests.support.ledgers import make_ledger

MODELS = "/api/v1/models"
# A model's answer is kept with the stamp of the metric definitions it ranks with: none yet.
NO_DEFINITIONS = 0


def projected(ledger: Ledger, position: int) -> None:
    """Until the catalogue has taken in ``position`` (as this process saw it)."""
    deadline = time.monotonic() + 5
    while True:
        seen = ledger.positions.seen("catalogue")
        if seen is not None and seen.position >= position:
            return
        assert time.monotonic() < deadline, "the catalogue never took in the change"
        time.sleep(0.01)


def create(client: TestClient, name: str, project: str) -> dict[str, Any]:
    body = {"name": name, "project": project, "task": "t", "framework": "f"}
    created = client.post(MODELS, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_a_model_is_answered_from_the_cache_as_the_tables_answer_it(store_url: str) -> None:
    ledger = make_ledger(store_url)
    from_tables = make_ledger(store_url, projections=False, answer_cache_mb=0)
    try:
        with api_client(ledger) as http, api_client(from_tables) as tables:
            # Given a model, taken in by the catalogue, and read once
            model = create(http, "fraud-detector", "fraud")
            projected(ledger, model["position"])
            assert http.get(f"{MODELS}/{model['id']}").status_code == 200
            hits = ledger.answers.hits
            # When it is read again
            got = http.get(f"{MODELS}/{model['id']}")
            # Then it is answered from the cache, with the tables' body and ETag
            assert ledger.answers.hits == hits + 1
            expected = tables.get(f"{MODELS}/{model['id']}", params={"min_position": 1})
            assert got.status_code == expected.status_code == 200
            assert got.json() == expected.json()
            assert got.headers["etag"] == expected.headers["etag"] == '"1"'
            assert int(got.headers["x-position"]) >= model["position"]
            assert 'answer_cache_lookups_total{result="hit"}' in http.get("/metrics").text
    finally:
        ledger.close()
        from_tables.close()


def test_a_change_is_read_at_once_and_then_from_the_cache(store_url: str) -> None:
    ledger = make_ledger(store_url)
    try:
        with api_client(ledger) as http:
            model = create(http, "ranker", "search")
            projected(ledger, model["position"])
            assert http.get(f"{MODELS}/{model['id']}").headers["etag"] == '"1"'  # cached
            # When the model changes
            url = f"{MODELS}/{model['id']}"
            changed = http.patch(url, json={"description": "now with bm25"}).json()
            # Then a read at its position has the change, wherever it is answered from
            read = http.get(url, params={"min_position": changed["position"]})
            assert read.json()["description"] == "now with bm25"
            assert read.headers["etag"] == '"2"'
            # and a plain read has it too (version 1's cached answer is never given),
            # from the cache once it was read at that version
            hits = ledger.answers.hits
            again = http.get(url)
            assert again.json()["description"] == "now with bm25"
            assert ledger.answers.hits == hits + 1
    finally:
        ledger.close()


def test_a_cached_model_stays_hidden_from_a_key_of_another_project(store_url: str) -> None:
    ledger = make_ledger(store_url, key_cache_seconds=0)
    try:
        with api_client(ledger) as admin:
            model = create(admin, "churn", "retention")
            key = admin.post(
                "/api/v1/admin/keys", json={"name": "vision-bot", "role": "viewer",
                                             "projects": ["vision"]},
            ).json()["key"]  # fmt: skip
            projected(ledger, model["position"])
            assert admin.get(f"{MODELS}/{model['id']}").status_code == 200  # now cached
            hits = ledger.answers.hits
            # When a key for another project asks for the cached model
            for _ in range(3):
                hidden = admin.get(f"{MODELS}/{model['id']}", headers=bearer(key))
                # Then it is not found: its project is read from the log before the cache
                assert hidden.status_code == 404
                assert hidden.headers["content-type"] == "application/problem+json"
            assert ledger.answers.hits == hits
            # while the admin's read of it is answered from the cache
            assert admin.get(f"{MODELS}/{model['id']}").status_code == 200
            assert ledger.answers.hits == hits + 1
    finally:
        ledger.close()


def test_answers_beyond_the_cache_are_read_from_the_tables(store_url: str) -> None:
    ledger = make_ledger(store_url, answer_cache_mb=0)
    try:
        with api_client(ledger) as http:
            first = create(http, "first", "p")
            second = create(http, "second", "p")
            projected(ledger, second["position"])
            # When both are read twice, with no room to keep an answer
            answers = [http.get(f"{MODELS}/{m['id']}") for m in (first, second) * 2]
            # Then each answers in full, every time from the tables
            assert [a.json()["name"] for a in answers] == ["first", "second"] * 2
            assert len(ledger.answers) == 0 and ledger.answers.hits == 0
    finally:
        ledger.close()


def registered(store_url: str, names: list[str]) -> list[dict[str, Any]]:
    """Models registered through a process since stopped, the first changed after the
    others were registered (its version 2)."""
    ledger = make_ledger(store_url)
    try:
        with api_client(ledger) as http:
            models = [create(http, name, "p") for name in names]
            changed = http.patch(f"{MODELS}/{models[0]['id']}", json={"description": "new"})
            projected(ledger, changed.json()["position"])
            return models
    finally:
        ledger.close()


def test_a_restart_starts_with_the_recently_changed_models_cached(store_url: str) -> None:
    # Given three models, the first one changed after the others were registered
    models = registered(store_url, ["older", "old", "newest"])
    # When a process starts on the registry and warms its cache, with room for all
    restarted = make_ledger(store_url, projections=False)
    try:
        assert len(restarted.answers) == 0
        assert restarted.models.warm() == 3
        # Then every model is answered from the cache, at the version the log says
        with api_client(restarted) as http:
            misses = restarted.answers.misses
            got = [http.get(f"{MODELS}/{m['id']}") for m in models]
            assert [g.json()["name"] for g in got] == ["older", "old", "newest"]
            assert got[0].json()["description"] == "new" and got[0].headers["etag"] == '"2"'
            assert restarted.answers.misses == misses
            assert restarted.answers.hits == 3
    finally:
        restarted.close()


def test_warming_keeps_the_most_recently_changed_models_first(store_url: str) -> None:
    # Given two models, the first changed last
    first, second = registered(store_url, ["first", "second"])
    restarted = make_ledger(store_url, projections=False)
    try:
        # When the cache is warmed with room for (about) one answer
        assert restarted.models.warm(share=1e-9) == 1
        # Then the one kept is the last changed, at its last version
        with api_client(restarted) as http:
            assert http.get(f"{MODELS}/{first['id']}").headers["etag"] == '"2"'
            assert restarted.answers.hits == 1
            assert http.get(f"{MODELS}/{second['id']}").status_code == 200
            assert restarted.answers.hits == 1
    finally:
        restarted.close()


def test_warmed_models_leave_the_cache_oldest_first(store_url: str) -> None:
    # Given two models, the first changed last, warmed into a process's cache
    first, second = registered(store_url, ["first", "second"])
    restarted = make_ledger(store_url, projections=False, answer_cache_mb=1)
    try:
        answers = restarted.answers
        assert restarted.models.warm(share=1.0) == 2
        generation = restarted.positions.seen_at["catalogue"].generation
        newest = ("model", generation, UUID(first["id"]), 2, NO_DEFINITIONS)
        oldest = ("model", generation, UUID(second["id"]), 1, NO_DEFINITIONS)
        assert newest in answers and oldest in answers  # (looked at without a use)
        # When other models' (smaller) answers arrive until one of the two has to go
        while newest in answers and oldest in answers:
            answers.put(("model", generation, uuid4(), 1, 0), Answer(os.urandom(100), 0))
        # Then the least recently changed model went first, the most recently changed stays
        assert oldest not in answers
        assert newest in answers
    finally:
        restarted.close()


@contextmanager
def two_processes(store_url: str) -> Iterator[tuple[TestClient, TestClient, Ledger]]:
    """An API process running the projections, and another (its client and its ledger)."""
    ledger = make_ledger(store_url)
    other = make_ledger(store_url, projections=False)
    try:
        with api_client(ledger) as http, api_client(other) as elsewhere:
            yield http, elsewhere, other
    finally:
        ledger.close()
        other.close()


def test_a_model_changed_through_another_process_is_read_again_into_the_cache(
    store_url: str,
) -> None:
    with two_processes(store_url) as (http, elsewhere, other):
        # Given a model the other process has read (and so keeps)
        model = create(http, "shared", "p")
        url = f"{MODELS}/{model['id']}"
        projected(other, model["position"])
        assert elsewhere.get(url).headers["etag"] == '"1"'
        # When it is changed through this process
        http.patch(url, json={"description": "changed"})
        # Then the other process reads it again once its catalogue has the change
        generation = other.positions.seen_at["catalogue"].generation
        changed = ("model", generation, UUID(model["id"]), 2, NO_DEFINITIONS)
        deadline = time.monotonic() + 5
        while other.answers.peek(changed) is None:
            assert time.monotonic() < deadline, "the change was never read again"
            time.sleep(0.02)
        # and its next read is answered from the cache, with the change
        hits = other.answers.hits
        got = elsewhere.get(url)
        assert got.json()["description"] == "changed" and got.headers["etag"] == '"2"'
        assert other.answers.hits == hits + 1
        # while the answer at the version before is gone
        before = ("model", generation, UUID(model["id"]), 1, NO_DEFINITIONS)
        assert other.answers.peek(before) is None


def test_a_kept_model_ranks_with_a_metric_definition_made_through_another_process(
    store_url: str,
) -> None:
    with two_processes(store_url) as (http, elsewhere, other):
        # Given a model with two versions, the other process keeping its answer
        model = create(http, "ranked", "p")
        url = f"{MODELS}/{model['id']}"
        for loss in (0.5, 0.2):
            run = http.post(f"{url}/train", json={"dataset": "d"}).json()["run_id"]
            done = http.post(
                f"{url}/training-runs/{run}/complete", json={"metrics": {"loss": loss}}
            )
        projected(other, done.json()["position"])
        assert elsewhere.get(url).json()["best_metrics"]["loss"]["model_version"] == 2
        hits = other.answers.hits
        assert elsewhere.get(url).json()["best_metrics"]["loss"]["model_version"] == 2
        assert other.answers.hits == hits + 1  # kept
        # When loss is declared higher-is-better through this process
        http.put("/api/v1/metric-definitions/loss", json={"direction": "maximize"})
        # Then a plain read there ranks with it within moments (the watch tells it)
        deadline = time.monotonic() + 5
        while elsewhere.get(url).json()["best_metrics"]["loss"]["model_version"] != 1:
            assert time.monotonic() < deadline, "the kept answer never ranked with it"
            time.sleep(0.02)
        # from its cache again, with the definitions it now knows
        hits = other.answers.hits
        assert elsewhere.get(url).json()["best_metrics"]["loss"]["model_version"] == 1
        assert other.answers.hits == hits + 1
        # and when it is declared back, a read that sends that position ranks with it
        back = http.put("/api/v1/metric-definitions/loss", json={"direction": "minimize"})
        position = back.json()["position"]
        best = elsewhere.get(url, params={"min_position": position}).json()["best_metrics"]
        assert best["loss"] == {"value": 0.2, "model_version": 2}
