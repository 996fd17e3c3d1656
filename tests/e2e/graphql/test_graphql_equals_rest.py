"""GraphQL says what REST says: for random registries and histories, on SQLite and
PostgreSQL, each GraphQL question gets the answer the REST route gives (model, by name,
search and its pages, statistics, the leaderboard, as of a past time, the audit trail,
deployments), read at the same position."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from modelledger.bootstrap import Ledger
from tests.support.graphql import (
    EVENT_FIELDS,
    MODEL_FIELDS,
    STATISTICS_FIELDS,
    STRETCH_FIELDS,
    SUMMARY_FIELDS,
    comparable_rest_model,
    data_of,
    in_rest_words,
    rest_model,
    rest_statistics,
)
from tests.support.histories import METRICS, PROJECTS, Played, head, histories, play_command

MODELS = "/api/v1/models"
ONE_MODEL = f"""
query($id: ID!, $at: Int!, $asOf: Time) {{
  model(id: $id, minPosition: $at) {{
    {MODEL_FIELDS}
    deployments {{ current {{ {STRETCH_FIELDS} }} history {{ {STRETCH_FIELDS} }} }}
    history(first: 1000) {{ nodes {{ {EVENT_FIELDS} }} pageInfo {{ hasNextPage }} }}
  }}
  past: model(id: $id, asOf: $asOf) {{ {MODEL_FIELDS} }}
  first: model(id: $id, atVersion: 1) {{ {MODEL_FIELDS} trainedVersion(number: 1) {{ number }} }}
}}
"""
# A page's models, whole (through the DataLoaders), and the log and the definitions
PAGE_AND_LOG = f"""
query($project: String, $at: Int!) {{
  models(project: $project, first: 100, minPosition: $at) {{
    nodes {{ {MODEL_FIELDS} deployments {{ history {{ {STRETCH_FIELDS} }} }} }}
  }}
  events(first: 1000, minPosition: $at) {{ nodes {{ {EVENT_FIELDS} }} }}
  metricDefinitions(minPosition: $at) {{
    name direction source unit description versions changedAt changedBy
  }}
}}
"""
BY_NAME = f"""
query($project: String!, $name: String!, $at: Int!) {{
  modelByName(project: $project, name: $name, minPosition: $at) {{ {MODEL_FIELDS} }}
}}
"""
CATALOGUE = f"""
query($project: String, $at: Int!, $after: String, $metric: String!, $asOf: Time) {{
  models(project: $project, sort: "updated_at", first: 3, after: $after, minPosition: $at) {{
    nodes {{ {SUMMARY_FIELDS} }} pageInfo {{ hasNextPage endCursor }}
  }}
  statistics(project: $project, minPosition: $at) {{ {STATISTICS_FIELDS} }}
  topPerforming(metric: $metric, project: $project, minPosition: $at) {{
    metric direction order items {{ rank id name project task modelVersion value }}
  }}
  pastModels: models(project: $project, asOf: $asOf, first: 100) {{ nodes {{ {SUMMARY_FIELDS} }} }}
  pastStatistics: statistics(project: $project, asOf: $asOf) {{ {STATISTICS_FIELDS} }}
  pastBoard: topPerforming(metric: $metric, project: $project, asOf: $asOf) {{
    metric direction order items {{ rank id name project task modelVersion value }}
  }}
  serving: deployments(asOf: $asOf, first: 100) {{ nodes {{ modelId {STRETCH_FIELDS} }} }}
}}
"""


def rest(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.text
    return response.json()


def models_agree(client: TestClient, model_id: str, at: int) -> None:
    history = rest(client, f"{MODELS}/{model_id}/history", limit=1000)["items"]
    as_of = history[len(history) // 2]["timestamp"]  # the middle of its story
    found = data_of(client, ONE_MODEL, id=model_id, at=at, asOf=as_of)
    model, past = found["model"], found["past"]
    now = rest(client, f"{MODELS}/{model_id}", min_position=at)
    assert rest_model(
        {k: v for k, v in model.items() if k not in ("deployments", "history")}
    ) == comparable_rest_model(now)
    assert rest_model(past) == comparable_rest_model(
        rest(client, f"{MODELS}/{model_id}", as_of=as_of)
    )
    deployments = rest(client, f"{MODELS}/{model_id}/deployments", min_position=at)
    assert in_rest_words(model["deployments"]) == {
        "current": list(deployments["current"].values()),
        "history": deployments["history"],
    }
    assert in_rest_words(model["history"]["nodes"]) == [
        {**item, "model_id": model_id} for item in history
    ]
    by_name = data_of(client, BY_NAME, project=now["project"], name=now["name"], at=at)
    assert rest_model(by_name["modelByName"]) == comparable_rest_model(now)
    first = dict(found["first"])
    assert first.pop("trainedVersion") == (
        {"number": 1} if any(v["number"] == 1 for v in first["versions"]) else None
    )
    assert rest_model(first) == comparable_rest_model(
        rest(client, f"{MODELS}/{model_id}", at_version=1)
    )


def pages_and_the_log_agree(client: TestClient, project: str | None, at: int) -> None:
    found = data_of(client, PAGE_AND_LOG, project=project, at=at)
    for node in found["models"]["nodes"]:  # every model of the page, whole
        model_id = node["id"]
        stretches = node.pop("deployments")["history"]
        assert rest_model(node) == comparable_rest_model(
            rest(client, f"{MODELS}/{model_id}", min_position=at)
        )
        deployments = rest(client, f"{MODELS}/{model_id}/deployments", min_position=at)
        assert in_rest_words(stretches) == deployments["history"]
    events = rest(client, "/api/v1/events", limit=1000, min_position=at)["items"]
    assert [in_rest_words(n) for n in found["events"]["nodes"]] == [
        {
            k: e.get(k)
            for k in (
                "position",
                "version",
                "type",
                "timestamp",
                "actor",
                "correlation_id",
                "causation_id",
                "data",
                "model_id",
            )
        }
        for e in events
    ]
    definitions = rest(client, "/api/v1/metric-definitions", min_position=at)["items"]
    assert in_rest_words(found["metricDefinitions"]) == definitions


def catalogues_agree(client: TestClient, project: str | None, metric: str, at: int) -> None:
    events = rest(client, "/api/v1/events", limit=1000)["items"]
    as_of = events[len(events) // 2]["timestamp"]
    after, pages = None, 0
    while True:  # every page of the search, by GraphQL's cursors and by REST's
        found = data_of(
            client, CATALOGUE, project=project, at=at, after=after, metric=metric, asOf=as_of
        )
        page = rest(
            client,
            f"{MODELS}/search",
            project=project,
            sort="updated_at",
            limit=3,
            cursor=after,
            min_position=at,
        )
        assert [rest_model(n) for n in found["models"]["nodes"]] == [
            comparable_rest_model(item, whole=False) for item in page["items"]
        ]
        assert found["models"]["pageInfo"]["endCursor"] == page["next_cursor"]
        pages += 1
        after = page["next_cursor"]
        if after is None:
            break
    assert pages >= 1
    stats = rest(client, f"{MODELS}/statistics", project=project, min_position=at)
    assert rest_statistics(found["statistics"]) == stats
    board = rest(
        client, f"{MODELS}/top-performing", metric=metric, project=project, min_position=at
    )
    assert in_rest_words(found["topPerforming"]) == board
    past = rest(client, f"{MODELS}/search", project=project, as_of=as_of, limit=100)
    assert [rest_model(n) for n in found["pastModels"]["nodes"]] == [
        comparable_rest_model(item, whole=False) for item in past["items"]
    ]
    past_stats = rest(client, f"{MODELS}/statistics", project=project, as_of=as_of)
    assert rest_statistics(found["pastStatistics"]) == past_stats
    past_board = rest(
        client, f"{MODELS}/top-performing", metric=metric, project=project, as_of=as_of
    )
    assert in_rest_words(found["pastBoard"]) == past_board
    serving = rest(client, "/api/v1/deployments", as_of=as_of, limit=100)
    assert in_rest_words(found["serving"]["nodes"]) == serving["items"]


@pytest.fixture
def played() -> Played:
    """The models created so far: shared by every example of a test (each adds to the
    registry the examples before it left)."""
    return Played()


@settings(
    max_examples=4,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # (shrinking replays whole registries)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    story=histories(max_steps=30),
    project=st.sampled_from((None, *PROJECTS)),
    metric=st.sampled_from(METRICS),
)
def test_graphql_answers_what_rest_answers(
    client: TestClient,
    ledger: Ledger,
    played: Played,
    story: list[Any],
    project: str | None,
    metric: str,
) -> None:
    # Given a registry with a random history (each example adds to the one before)
    for step in story:
        if type(step).__name__ not in ("CatchUp", "Rebuild"):
            play_command(ledger.registry, step, played)
    at = head(ledger.registry)
    # When each is asked through GraphQL and REST, then the answers agree
    for model_id in played.models:
        models_agree(client, str(model_id), at)
    catalogues_agree(client, project, metric, at)
    pages_and_the_log_agree(client, project, at)
