"""The global event feed over HTTP, on SQLite and PostgreSQL: every change across the
registry in log order, filtered by model, type, actor and time, paged with
``next_after``, and live as server-sent events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from commands.handlers import handle_sync
from commands.messages import CompleteTraining, CreateModel, TrainModel
from commands.registry import CommandContext, ModelRegistry
from modelledger.bootstrap import Ledger
from tests.e2e.problems import assert_problem

EVENTS = "/api/v1/events"


def a_registry_of_two_teams(registry: ModelRegistry) -> list[UUID]:
    """Alice creates and trains two models; Bob creates one and trains it."""
    ids = []
    for actor, names in (("alice", ["a1", "a2"]), ("bob", ["b1"])):
        ctx = CommandContext(actor=actor)
        for name in names:
            create = CreateModel(name=name, project="feed", task="asr", framework="jax")
            model_id = UUID(handle_sync(registry, create, ctx).id)
            run = handle_sync(registry, TrainModel(model_id=model_id, dataset="d"), ctx)
            complete = CompleteTraining(
                model_id=model_id, run_id=run.details["run_id"], metrics={"wer": 0.2}
            )
            handle_sync(registry, complete, ctx)
            ids.append(model_id)
    return ids


def read_all(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """Page through the feed with ``next_after`` until it says it is at the head."""
    items: list[dict[str, Any]] = []
    after = 0
    for _ in range(100):
        response = client.get(EVENTS, params={**params, "after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        assert int(response.headers["X-Position"]) == page["next_after"]
        items.extend(page["items"])
        after = page["next_after"]
        if page["at_head"]:
            return items
    raise AssertionError("the feed never reached its head")


def test_the_feed_lists_every_event_in_log_order(client: TestClient, ledger: Ledger) -> None:
    # Given three models' lives (9 events)
    ids = a_registry_of_two_teams(ledger.registry)
    # When the whole feed is read two events at a time
    items = read_all(client, limit=2)
    # Then it holds every event once, in position order, each naming its model
    positions = [item["position"] for item in items]
    assert len(items) == 9 and positions == sorted(set(positions))
    assert [item["type"] for item in items[:3]] == [
        "ModelCreated",
        "TrainingStarted",
        "ModelTrained",
    ]
    assert {UUID(item["model_id"]) for item in items} == set(ids)
    assert items[0]["data"]["name"] == "a1" and items[0]["actor"] == "alice"
    # and one page of everything says the same
    whole = client.get(EVENTS, params={"limit": 1000}).json()
    assert whole["items"] == items and whole["at_head"] is True


def test_filters_select_exactly_the_matching_events(client: TestClient, ledger: Ledger) -> None:
    # Given three models' lives by two actors
    ids = a_registry_of_two_teams(ledger.registry)
    everything = read_all(client)
    middle = datetime.fromisoformat(everything[4]["timestamp"])
    # When the feed is filtered by model, type (repeatable), actor and time
    # Then each answer is the whole feed with the filter applied
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"model_id": str(ids[1])}, lambda e: e["model_id"] == str(ids[1])),
        ({"type": ["ModelCreated", "ModelTrained"]}, lambda e: e["type"] != "TrainingStarted"),
        ({"actor": "bob"}, lambda e: e["actor"] == "bob"),
        ({"since": middle.isoformat()}, lambda e: datetime.fromisoformat(e["timestamp"]) >= middle),
        ({"until": middle.isoformat()}, lambda e: datetime.fromisoformat(e["timestamp"]) <= middle),
        (
            {"actor": "alice", "type": "ModelTrained"},
            lambda e: e["actor"] == "alice" and e["type"] == "ModelTrained",
        ),
        ({"model_id": str(ids[2]), "actor": "alice"}, lambda e: False),
    ]
    for params, wanted in cases:
        assert read_all(client, limit=1, **params) == [e for e in everything if wanted(e)], params


def test_next_after_goes_on_where_the_last_page_stopped(client: TestClient, ledger: Ledger) -> None:
    # Given a feed of nine events
    a_registry_of_two_teams(ledger.registry)
    # When the first page of four is read, and then the rest after its next_after
    first = client.get(EVENTS, params={"limit": 4}).json()
    rest = client.get(EVENTS, params={"after": first["next_after"]}).json()
    # Then the pages meet without a gap or an overlap, and only the last is at the head
    assert first["at_head"] is False and rest["at_head"] is True
    assert first["next_after"] == first["items"][-1]["position"]
    assert len(first["items"]) + len(rest["items"]) == 9
    assert rest["items"][0]["position"] > first["next_after"]
    # and past the head the feed is empty, still at the head
    beyond = client.get(EVENTS, params={"after": rest["next_after"]}).json()
    assert beyond == {"items": [], "next_after": rest["next_after"], "at_head": True}


def test_a_time_window_with_no_events_is_empty(client: TestClient, ledger: Ledger) -> None:
    a_registry_of_two_teams(ledger.registry)
    long_ago = (datetime.now().astimezone() - timedelta(days=3650)).isoformat()
    assert read_all(client, until=long_ago) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "ModelBaked"}, "query.type.0"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"after": -1}, "query.after"),
        ({"model_id": "not-a-uuid"}, "query.model_id"),
        ({"since": "2026-01-01T00:00:00"}, "query.since"),
        ({"until": "yesterday"}, "query.until"),
        ({"actor": ""}, "query.actor"),
        ({"colour": "red"}, "query.colour"),
    ],
)
def test_bad_feed_parameters_are_422(
    memory_client: TestClient, params: dict[str, Any], field: str
) -> None:
    assert_problem(memory_client.get(EVENTS, params=params), 422, field)


def test_a_bad_last_event_id_is_422(memory_client: TestClient) -> None:
    response = memory_client.get(f"{EVENTS}/stream", headers={"Last-Event-ID": "abc"})
    assert_problem(response, 422, "header.last-event-id")
