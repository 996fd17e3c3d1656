"""Schema evolution: ModelTrained v2 added ``output_model``, TrainingStarted v2
``base_model``, ModelDeployed v2 ``target`` and ``endpoint_name``. Events stored as v1
(a fixture written by the code before those changes) must still load, fold and project,
on both stores, next to v2 events written today."""

from __future__ import annotations

import json
import time
from pathlib import Path
from uuid import UUID

from fastapi.testclient import TestClient

from commands.archive import import_events
from commands.handlers import handle_sync
from commands.messages import CompleteTraining, TrainModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from queries.models import get_model
from tests.support.histories import assert_read_model_matches_the_log, logged_model_ids
from tests.support.running import states

V1_EVENTS = Path(__file__).parent.parent / "fixtures" / "events-v1.jsonl"
TRAINED = "write_model.model:AIModel.ModelTrained"


def stored_trained_states(ledger: Ledger) -> list[dict[str, object]]:
    page = ledger.registry.recorder.select_notifications(start=1, limit=10_000)
    return [json.loads(n.state) for n in page if n.topic == TRAINED]


def store_the_v1_fixture(ledger: Ledger) -> int:
    with V1_EVENTS.open() as lines:
        summary = import_events(
            ledger.registry.recorder, ledger.registry.mapper, lines, progress=lambda _: None
        )
    assert summary.last_position is not None
    return summary.last_position


def test_stored_v1_events_load_fold_and_project(ledger: Ledger, client: TestClient) -> None:
    # Given events stored by the code before ModelTrained had a version 2
    head = store_the_v1_fixture(ledger)
    v1_states = stored_trained_states(ledger)
    assert v1_states and all(
        "class_version" not in s and "output_model" not in s for s in v1_states
    )
    # When every model is folded from the store
    # Then each loads, its versions upcast with no output model
    served = 0
    for model_id in logged_model_ids(ledger.registry):
        model, _ = get_model(ledger.event_log, model_id)
        assert all(version.output_model is None for version in model.versions)
        assert all(run.base_model is None for run in model.training_runs.values())
        for deployment in model.deployments.values():
            assert (deployment.target, deployment.endpoint_name) == ("external", None)
            served += 1
    assert served, "the fixture should leave a deployment to check"
    # And the projections (running in the app) reach the head and agree with a fold
    response = client.get("/api/v1/models/search", params={"min_position": head, "limit": 100})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) >= 1
    deadline = time.monotonic() + 30
    while any(state.position < head for state in states(ledger).values()):
        assert time.monotonic() < deadline, "the projections did not reach the head"
        time.sleep(0.02)
    assert_read_model_matches_the_log(ledger)


def test_a_v1_model_goes_on_with_v2_events(ledger: Ledger, client: TestClient) -> None:
    # Given a model whose versions were stored as v1
    store_the_v1_fixture(ledger)
    model_id = next(
        model_id
        for model_id in sorted(logged_model_ids(ledger.registry), key=str)
        if (m := get_model(ledger.event_log, model_id)[0]).versions and not m.archived
    )
    before = len(get_model(ledger.event_log, model_id)[0].versions)
    # When it is trained again today, naming the output model
    ctx = CommandContext(actor="today")
    run = handle_sync(ledger.registry, TrainModel(model_id=model_id, dataset="d2"), ctx)
    complete = CompleteTraining(
        model_id=model_id,
        run_id=run.details["run_id"],
        metrics={"accuracy": 0.9},
        output_model="ft:gpt-4o-mini:acme::abc123",
    )
    position = handle_sync(ledger.registry, complete, ctx).position
    # Then the new event is stored as the current version and the model folds old and new
    assert stored_trained_states(ledger)[-1]["class_version"] == 3
    model, _ = get_model(ledger.event_log, model_id)
    assert [v.output_model for v in model.versions] == [None] * before + [
        "ft:gpt-4o-mini:acme::abc123"
    ]
    # And the versions read model shows both
    response = client.get(f"/api/v1/models/{model_id}/versions", params={"min_position": position})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["output_model"] for item in items] == [v.output_model for v in model.versions]
    assert isinstance(UUID(response.json()["id"]), UUID)
