"""Importing Hub models over HTTP: the real huggingface_hub SDK against a local server that
speaks the Hub's API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.e2e.problems import assert_problem
from tests.support.auth import api_client, bearer
from tests.support.fake_hub import FakeHub
from tests.support.ledgers import make_ledger

IMPORT = "/api/v1/models/import/huggingface"
REPO = "acme/sentiment-bert"
CARD = "# Sentiment BERT\n\nClassifies movie reviews as positive or negative."


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with FakeHub() as server:
        yield server


@pytest.fixture
def hub_client(store_url: str, hub: FakeHub) -> Iterator[tuple[TestClient, Ledger]]:
    ledger = make_ledger(store_url, hf_endpoint=hub.url)
    with api_client(ledger) as client:
        yield client, ledger
    ledger.close()


def a_hub_model(hub: FakeHub, repo_id: str = REPO, **fields: Any) -> str:
    defaults: dict[str, Any] = {
        "pipeline_tag": "text-classification",
        "library_name": "transformers",
        "tags": ["bert", "sentiment"],
        "license": "apache-2.0",
        "base_model": "google-bert/bert-base-uncased",
        "card_text": CARD,
        "eval_results": [
            {
                "task_type": "text-classification",
                "dataset_type": "imdb",
                "dataset_name": "IMDb",
                "metric_type": "accuracy",
                "metric_value": 0.93,
            },
            {
                "task_type": "text-classification",
                "dataset_type": "imdb",
                "dataset_name": "IMDb",
                "metric_type": "f1",
                "metric_value": 0.91,
            },
        ],
    }
    return hub.add_model(repo_id, **{**defaults, **fields})


def history_types(client: TestClient, model_id: str) -> list[str]:
    items = client.get(f"/api/v1/models/{model_id}/history").json()["items"]
    return [item["type"] for item in items]


def test_a_hub_model_is_registered_with_its_card_and_its_results_as_a_version(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    # Given a model on the Hub with a card and reported evaluation results
    sha = a_hub_model(hub)
    # When it is imported
    response = client.post(IMPORT, json={"repo_id": REPO, "project": "nlp"})
    # Then the model is registered, with a first version holding the results
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True and body["model_version"] == 1 and body["revision"] == sha
    position = body["position"]
    model = client.get(f"/api/v1/models/{body['id']}", params={"min_position": position}).json()
    assert model["name"] == REPO and model["project"] == "nlp"
    assert (model["task"], model["framework"]) == ("text-classification", "transformers")
    assert {"bert", "sentiment"} <= set(model["tags"])
    assert model["description"].startswith("# Sentiment BERT")
    assert "---" not in model["description"]  # the card's metadata block is not its text
    assert model["configuration"]["license"] == "apache-2.0"
    assert model["configuration"]["base_model"] == "google-bert/bert-base-uncased"
    [version] = model["versions"]
    assert version["metrics"] == {"accuracy": 0.93, "f1": 0.91}
    assert version["output_model"] == REPO
    assert version["artifact_uri"] == f"{hub.url}/{REPO}/tree/{sha}"
    # And it is found by search and ranked on the leaderboard
    found = client.get("/api/v1/models/search", params={"q": "reviews", "min_position": position})
    assert [item["id"] for item in found.json()["items"]] == [body["id"]]
    top = client.get(
        "/api/v1/models/top-performing", params={"metric": "accuracy", "min_position": position}
    )
    assert [item["id"] for item in top.json()["items"]] == [body["id"]]


def test_importing_again_records_only_what_changed(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(hub)
    model_id = client.post(IMPORT, json={"repo_id": REPO}).json()["id"]
    before = history_types(client, model_id)
    # When nothing changed on the Hub, an import records nothing
    again = client.post(IMPORT, json={"repo_id": REPO})
    assert again.status_code == 200
    assert again.json()["changed"] == [] and again.json()["model_version"] is None
    assert history_types(client, model_id) == before
    # When only the card's text changed, only the description is updated
    hub.update_model(REPO, card_text=CARD + "\n\nNow with a usage section.")
    text_only = client.post(IMPORT, json={"repo_id": REPO}).json()
    assert text_only["changed"] == ["description"] and text_only["model_version"] is None
    assert history_types(client, model_id) == [*before, "ModelUpdated"]
    # When the reported results changed, a new version records them
    hub.update_model(
        REPO,
        eval_results=[
            {
                "task_type": "text-classification",
                "dataset_type": "imdb",
                "dataset_name": "IMDb",
                "metric_type": "accuracy",
                "metric_value": 0.95,
            }
        ],
    )
    better = client.post(IMPORT, json={"repo_id": REPO}).json()
    assert better["changed"] == [] and better["model_version"] == 2
    versions = client.get(
        f"/api/v1/models/{model_id}/versions", params={"min_position": better["position"]}
    ).json()
    assert [v["metrics"] for v in versions["items"]] == [
        {"accuracy": 0.93, "f1": 0.91},
        {"accuracy": 0.95},
    ]


def test_results_on_several_datasets_keep_one_name_each(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(
        hub,
        "acme/multi",
        eval_results=[
            {
                "task_type": "text-classification",
                "dataset_type": "imdb",
                "dataset_name": "IMDb",
                "metric_type": "accuracy",
                "metric_value": 0.9,
            },
            {
                "task_type": "text-classification",
                "dataset_type": "sst2",
                "dataset_name": "SST-2",
                "metric_type": "accuracy",
                "metric_value": 0.8,
            },
        ],
    )
    body = client.post(IMPORT, json={"repo_id": "acme/multi"}).json()
    model = client.get(f"/api/v1/models/{body['id']}", params={"min_position": body["position"]})
    [version] = model.json()["versions"]
    assert version["metrics"] == {"accuracy": 0.9, "accuracy@sst2": 0.8}


def test_a_model_the_hub_does_not_have_is_a_422_naming_repo_id(
    hub_client: tuple[TestClient, Ledger],
) -> None:
    client, _ = hub_client
    response = client.post(IMPORT, json={"repo_id": "acme/no-such-model"})
    assert_problem(response, 422, "repo_id")
    assert "no model 'acme/no-such-model'" in response.json()["detail"]


def test_a_gated_model_without_access_is_a_422_naming_repo_id(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(hub, "acme/gated", gated=True)
    response = client.post(IMPORT, json={"repo_id": "acme/gated"})
    assert_problem(response, 422, "repo_id")


def test_a_hub_that_is_down_is_a_503_and_the_import_works_when_it_is_back(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(hub, "acme/flaky")
    hub.fail_next_requests(1, status=503)
    response = client.post(IMPORT, json={"repo_id": "acme/flaky"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert client.post(IMPORT, json={"repo_id": "acme/flaky"}).status_code == 201


@pytest.mark.parametrize(
    "body",
    [{"repo_id": "no-slash"}, {"repo_id": "a/b/c"}, {"repo_id": "acme/x", "extra": 1}, {}],
)
def test_a_malformed_import_request_is_a_422(
    hub_client: tuple[TestClient, Ledger], body: dict[str, Any]
) -> None:
    client, _ = hub_client
    response = client.post(IMPORT, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_key_scoped_to_a_project_imports_into_that_project_only(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(hub, "acme/scoped")
    issued = client.post(
        "/api/v1/admin/keys", json={"name": "nlp-bot", "role": "editor", "projects": ["nlp"]}
    )
    key = bearer(issued.json()["key"])
    outside = client.post(IMPORT, json={"repo_id": "acme/scoped", "project": "vision"}, headers=key)
    assert_problem(outside, 403, "project")
    inside = client.post(IMPORT, json={"repo_id": "acme/scoped", "project": "nlp"}, headers=key)
    assert inside.status_code == 201, inside.text


def test_an_import_retried_with_its_idempotency_key_records_nothing_twice(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(hub)
    key = {"Idempotency-Key": "import-7f3c"}
    # Given an import whose answer was lost (sent again with the same key)
    first = client.post(IMPORT, json={"repo_id": REPO}, headers=key)
    again = client.post(IMPORT, json={"repo_id": REPO}, headers=key)
    # Then the retry answers as the first did, and the model has one story
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert history_types(client, first.json()["id"]) == [
        "ModelCreated",
        "TrainingStarted",
        "ModelTrained",
    ]
    # and the same key with another request is refused, as on every command
    other = client.post(IMPORT, json={"repo_id": REPO, "project": "elsewhere"}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.text


def test_a_retried_import_answers_as_the_first_even_if_the_hub_changed_since(
    hub_client: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, _ = hub_client
    a_hub_model(hub)
    model_id = client.post(IMPORT, json={"repo_id": REPO}).json()["id"]
    # Given a later import that updated the description, whose answer was lost
    hub.update_model(REPO, card_text=CARD + "\n\nA new section.")
    key = {"Idempotency-Key": "import-later-1"}
    first = client.post(IMPORT, json={"repo_id": REPO}, headers=key)
    assert first.json()["changed"] == ["description"]
    before = history_types(client, model_id)
    # When the Hub moves on (new results: a fresh import would record a version) first
    better = {"task_type": "text-classification", "dataset_type": "imdb",
              "dataset_name": "IMDb", "metric_type": "accuracy", "metric_value": 0.97}  # fmt: skip
    hub.update_model(REPO, eval_results=[better])
    again = client.post(IMPORT, json={"repo_id": REPO}, headers=key)
    # Then the retry answers as the first did, and records nothing
    assert again.status_code == first.status_code and again.json() == first.json()
    assert history_types(client, model_id) == before
