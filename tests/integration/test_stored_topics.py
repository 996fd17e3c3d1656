"""Stored topics and shapes: every event type of AIModel and ApiKey, as the code before
the decorator-style aggregate stored it (tests/fixtures/events-v2.jsonl, written by
tests/support/every_event.py), still resolves to its event class, folds to the very
state it folded to then, and projects; and the same story played today stores the same
topics and the same JSON, timestamps aside."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eventsourcing.application import project_aggregate
from eventsourcing.utils import resolve_topic
from fastapi.testclient import TestClient

from commands.archive import import_events
from modelledger.bootstrap import Ledger
from tests.support.every_event import EVENTS, FOLDED, folded_state, play
from tests.support.histories import assert_read_model_matches_the_log
from tests.support.ledgers import make_ledger
from tests.support.running import states

MODEL_TOPIC = "write_model.model:AIModel."


def stored_lines(path: Path = EVENTS) -> list[dict[str, Any]]:
    with path.open() as lines:
        return [record for line in lines if "topic" in (record := json.loads(line))]


def store(ledger: Ledger, lines: list[str]) -> int:
    summary = import_events(
        ledger.registry.recorder, ledger.registry.mapper, lines, progress=lambda _: None
    )
    assert summary.last_position is not None
    return summary.last_position


def test_the_fixture_holds_every_event_type() -> None:
    topics = {line["topic"] for line in stored_lines()}
    assert topics == {
        *(
            MODEL_TOPIC + name
            for name in (
                "ModelCreated", "ModelUpdated", "TrainingStarted", "TrainingJobSubmitted",
                "ModelTrained", "TrainingFailed", "DeploymentRequested", "DeploymentFailed",
                "ModelDeployed", "ModelRolledBack", "ModelUndeployed", "ModelArchived",
            )
        ),
        "write_model.api_key:ApiKey.KeyIssued",
        "write_model.api_key:ApiKey.KeyRevoked",
    }  # fmt: skip


def test_every_stored_topic_resolves_to_its_event_class() -> None:
    for line in stored_lines():
        event_class = resolve_topic(line["topic"])
        assert event_class.__name__ == line["topic"].rpartition(".")[2]
        assert event_class.__qualname__ == line["topic"].partition(":")[2]


def test_stored_events_fold_to_the_state_they_folded_to() -> None:
    # Given the events stored by the code before the change
    ledger = make_ledger("memory://")
    try:
        with EVENTS.open() as lines:
            store(ledger, list(lines))
        registry = ledger.registry
        expected = json.loads(FOLDED.read_text())
        # When each aggregate is folded from them by today's code
        for aggregate_id, state in expected.items():
            stored = registry.recorder.select_events(next(_ids(registry, aggregate_id)))
            aggregate = project_aggregate(None, map(registry.mapper.to_domain_event, stored))
            # Then it is what it was, attribute for attribute (its versions with the
            # description and tags they have had since, empty: VersionUpdated came later)
            assert folded_state(aggregate) == _with_version_notes(state), aggregate_id
    finally:
        ledger.close()
    whole_life = next(s for s in expected.values() if s.get("name") == "whole-life")
    assert whole_life["status"] == "archived"
    assert [v["output_model"] for v in whole_life["versions"]] == [
        None,
        "ft:gpt-4o-mini:acme::2",
    ]
    assert {r["run_id"]: r["state"] for r in whole_life["training_runs"].values()} == {
        "run-1": "completed", "run-2": "completed", "run-3": "failed", "run-4": "failed",
    }  # fmt: skip


def _with_version_notes(state: dict[str, Any]) -> dict[str, Any]:
    # (and their number in a registry they were imported from: none, imports came later)
    notes: dict[str, Any] = {"description": "", "tags": [], "source_version": None}
    versions = [{**notes, **v} for v in state.get("versions", [])]
    return {**state, "versions": versions} if "versions" in state else state


def _ids(registry: Any, aggregate_id: str) -> Any:
    for notification in registry.recorder.select_notifications(start=1, limit=1_000):
        if str(notification.originator_id) == aggregate_id:
            yield notification.originator_id


def test_the_story_stores_today_what_it_stored_then() -> None:
    # Given the story played again by today's code
    ledger = make_ledger("memory://")
    try:
        play(ledger.registry)
        notifications = ledger.registry.recorder.select_notifications(start=1, limit=1_000)
        today = [
            (n.topic, str(n.originator_id), n.originator_version, json.loads(n.state))
            for n in notifications
        ]
    finally:
        ledger.close()
    then = [(s["topic"], s["model_id"], s["version"], s["state"]) for s in stored_lines()]
    # Then each event has the topic, aggregate, version, fields (in order) and values
    # it had then; only the times differ
    assert len(today) == len(then)
    for (topic, *rest, today_state), (topic_then, *rest_then, state_then) in zip(
        today, then, strict=True
    ):
        state = _as_then(topic, today_state)
        assert (topic, rest) == (topic_then, rest_then)
        assert list(state) == list(state_then), topic
        assert _timeless(state) == _timeless(state_then), topic


def _as_then(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """What changed since, taken back: ModelTrained v3 added ``source_version`` (None
    but for imported versions)."""
    if topic != MODEL_TOPIC + "ModelTrained":
        return state
    assert state.pop("source_version") is None and state["class_version"] == 3
    return state | {"class_version": 2}


def _timeless(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "timestamp"}


def test_the_projections_read_them(ledger: Ledger, client: TestClient, tmp_path: Path) -> None:
    # Given the models' stored events (the keys' are the keys projection's, and the
    # helper below checks every logged id as a model)
    with EVENTS.open() as file:
        header, *lines = file.readlines()
    events = [line for line in lines if MODEL_TOPIC in line]
    footer = json.dumps({"footer": {"events": len(events)}}) + "\n"
    head = store(ledger, [header, *events, footer])
    # When the projections (running in the app) reach the head
    response = client.get("/api/v1/models/search", params={"min_position": head, "limit": 100})
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while any(state.position < head for state in states(ledger).values()):
        assert time.monotonic() < deadline, "the projections did not reach the head"
        time.sleep(0.02)
    # Then every read model agrees with a fold of the log
    assert assert_read_model_matches_the_log(ledger) == 3
