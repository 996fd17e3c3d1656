"""The projections are correct: what they maintain incrementally, batch after batch, is
what a rebuild from scratch gives and what a fold of the events says; a projection that
fails stops alone and resumes after the fix; a rebuild swaps in while queries answer.

Every test runs on SQLite and on PostgreSQL. The worker-process stories (a crash mid
catch-up, two workers and their lease) are in ``test_projection_workers.py``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Connection, Table, inspect, select

from commands.handlers import handle_sync
from commands.messages import CompleteTraining, CreateModel, TrainModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from projections.applying import apply_events, decode, topics_of
from projections.base import Projection
from projections.catalogue import CatalogueProjection
from projections.deployments import DeploymentsProjection
from projections.follow import read_page
from projections.keys import KeysProjection
from projections.runner import RunnerOptions
from projections.timeline import TimelineProjection
from projections.verify import diff_rows, same, verify_projection
from projections.versions import VersionsProjection
from projections.webhooks import WebhooksProjection
from projections.worker import PROJECTIONS, ProjectionWorker, ensure_projections, projection_named
from queries.models import get_model, model_view
from queries.projections import request_rebuild
from read_model.keys import keys_table
from read_model.state import read_states
from read_model.tables import (
    CATALOGUE_VERSION,
    catalogue_tables,
    deployments_table,
    versions_table,
)
from read_model.timeline import timeline_tables
from read_model.webhooks import webhooks_table
from tests.support.auth import api_client
from tests.support.histories import (
    POISON,
    CatchUp,
    Played,
    Rebuild,
    Step,
    a_model_story,
    assert_read_model_matches_the_log,
    head,
    histories,
    logged_model_ids,
    play_command,
    write_models,
)
from tests.support.ledgers import make_ledger
from tests.support.reads import model_now
from tests.support.running import run_projection, settled, states
from write_model.model import AIModel

ADMIN = "/api/v1/admin/projections"
MODELS = "/api/v1/models"


# -- helpers ----------------------------------------------------------------------------


SCRATCH_GENERATION = 99


def tables_of(projection: type[Projection], generation: int, dialect: str) -> list[Table]:
    """The projection's tables of one generation, in ``table_names`` order."""
    if issubclass(projection, TimelineProjection):
        timeline = timeline_tables(generation)
        tables = [timeline.models, timeline.metrics, timeline.state, timeline.definitions]
    elif issubclass(projection, CatalogueProjection):
        t = catalogue_tables(generation, dialect)
        tables = [t.models, t.tags, t.metrics, t.counts, t.metric_stats, t.definitions]
    elif issubclass(projection, VersionsProjection):
        tables = [versions_table(generation)]
    elif issubclass(projection, KeysProjection):
        tables = [keys_table(generation)]
    elif issubclass(projection, WebhooksProjection):
        tables = [webhooks_table(generation)]
    else:
        tables = [deployments_table(generation)]
    assert [t.name for t in tables] == projection.table_names(generation, dialect)
    return tables


def rows(conn: Connection, table: Table) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row._mapping.items() if k != "search"}  # computed by PostgreSQL
        for row in conn.execute(select(table).order_by(*table.primary_key.columns))
    ]


def assert_equals_a_rebuild_in_one_batch(ledger: Ledger, projection: type[Projection]) -> None:
    """Build another generation from the whole log in one batch (``apply_events``) and
    compare it with the live one, row for row (``diff_rows``)."""
    event_log, topics = ledger.event_log, topics_of(projection)
    events: list[tuple[int, AIModel.Event]] = []
    after = 0
    while page := read_page(event_log, after, 1000):
        events += decode(event_log, topics, page)
        after = page[-1].id
    with ledger.write_engine.begin() as conn:
        generation = read_states(conn)[projection.name].generation
        projection.create_tables(conn, SCRATCH_GENERATION)
        apply_events(conn, projection, SCRATCH_GENERATION, events)
        differences = []
        dialect = conn.dialect.name
        for live, rebuilt in zip(
            tables_of(projection, generation, dialect),
            tables_of(projection, SCRATCH_GENERATION, dialect),
            strict=True,
        ):
            differences += diff_rows(live.name, rows(conn, live), rows(conn, rebuilt))
        projection.drop_tables(conn, SCRATCH_GENERATION)
    assert not differences, differences[:10]


def verify_all(ledger: Ledger, projections: tuple[type[Projection], ...] = PROJECTIONS) -> None:
    at = head(ledger.registry)
    for projection in projections:
        verdict = verify_projection(ledger.write_engine, ledger.event_log, projection)
        assert verdict.consistent, verdict.differences
        assert verdict.position == at


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.01)


def all_at_head(ledger: Ledger) -> bool:
    at = head(ledger.registry)
    current = states(ledger)
    return all(settled(current[p.name], at) for p in PROJECTIONS)


def start_worker(
    ledger: Ledger,
    projections: tuple[type[Projection], ...] = PROJECTIONS,
    options: RunnerOptions | None = None,
) -> ProjectionWorker:
    """The test's own worker, as ``ledger.worker``: the app then starts none of its own,
    and closing the ledger stops it."""
    worker = ProjectionWorker(
        ledger.write_engine,
        ledger.event_log,
        options=options or RunnerOptions(poll_interval=0.02),
        projections=projections,
    )
    worker.start()
    ledger.worker = worker
    return worker


def stop_worker(ledger: Ledger) -> None:
    assert ledger.worker is not None
    ledger.worker.stop()
    ledger.worker = None


# -- incremental == rebuilt == folded -------------------------------------------------


@pytest.mark.slow  # a property over many stores: make test, not test-fast
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_incremental_projections_equal_a_rebuild_and_a_fold_of_the_log(
    new_store: Callable[[], str], history: list[Step]
) -> None:
    # Given an empty store with the projections' tables
    ledger = make_ledger(new_store(), db_pool_size=2)
    try:
        ensure_projections(ledger.write_engine)
        played = Played()
        # When a random history of commands is written, and the projections process
        # what has arrived at random moments, in batches of random sizes (and now and
        # then one of them is rebuilt blue/green and swapped in)
        for step in history:
            if isinstance(step, CatchUp):
                for projection in PROJECTIONS:
                    run_projection(ledger, projection, step.batch_size, step.batches)
            elif isinstance(step, Rebuild):
                request_rebuild(ledger.write_engine, step.projection, {step.projection})
                run_projection(ledger, projection_named(step.projection), step.batch_size)
            else:
                play_command(ledger.registry, step, played)
        # ...and finally catch up with the rest
        for projection in PROJECTIONS:
            run_projection(ledger, projection, batch_size=3)

        # Then every projection stands at the head and equals a rebuild from scratch
        # (the whole log in one batch), row for row
        at = head(ledger.registry)
        for projection in PROJECTIONS:
            assert states(ledger)[projection.name].position == at
            assert_equals_a_rebuild_in_one_batch(ledger, projection)
        # and equals a direct fold of the events: every model's catalogue row is the
        # folded model, its versions and deployments the folded ones, and the
        # statistics counters count the folded models
        assert assert_read_model_matches_the_log(ledger) == len(played.models)
    finally:
        ledger.close()


# -- a failing projection stops alone and resumes after the fix ----------------------


class VersionsThatChokeOnPoison(VersionsProjection):
    """The versions projection with a bug: it cannot handle one artifact URI."""

    def process_event(self, event: AIModel.Event, position: int) -> None:
        if isinstance(event, AIModel.ModelTrained) and event.artifact_uri == POISON:
            raise RuntimeError("cannot parse the artifact URI")
        super().process_event(event, position)


def poisoned_version(ledger: Ledger) -> int:
    """A model trained with the artifact the broken projection chokes on; its position."""
    ctx = CommandContext(actor="poisoner")
    create = CreateModel(name="poisoned", project="vision", task="asr", framework="jax")
    model_id = UUID(handle_sync(ledger.registry, create, ctx).id)
    train = TrainModel(model_id=model_id, dataset="d")
    run_id = handle_sync(ledger.registry, train, ctx).details["run_id"]
    complete = CompleteTraining(
        model_id=model_id, run_id=run_id, metrics={"wer": 0.1}, artifact_uri=POISON
    )
    position = handle_sync(ledger.registry, complete, ctx).position
    assert position is not None
    return position


def test_a_projection_that_fails_on_an_event_stops_alone_and_resumes_after_the_fix(
    ledger: Ledger,
) -> None:
    # Given a log with a version the versions projection's code cannot handle,
    # between many ordinary events
    write_models(ledger.registry, 30, seed=1)
    poison = poisoned_version(ledger)
    write_models(ledger.registry, 30, seed=2)
    before_poison = ledger.registry.recorder.select_notifications(1, poison, stop=poison - 1)[-1].id

    # When a worker with that broken code processes the log
    broken = (CatalogueProjection, VersionsThatChokeOnPoison, DeploymentsProjection)
    start_worker(ledger, broken)

    # Then the versions projection stops at the event, saying why, having committed
    # everything before it
    wait_until(lambda: states(ledger)["versions"].status == "failed", "versions fails")
    failed = states(ledger)["versions"]
    assert failed.error_position == poison
    assert (
        failed.error is not None and "RuntimeError: cannot parse the artifact URI" in failed.error
    )
    assert failed.position == before_poison
    # and the other projections carry on to the head
    wait_until(
        lambda: all(
            states(ledger)[n].position == head(ledger.registry)
            for n in ("catalogue", "deployments")
        ),
        "the healthy projections reach the head",
    )
    with api_client(ledger) as client:
        report = {item["name"]: item for item in client.get(ADMIN).json()}
    assert report["versions"]["status"] == "failed"
    assert report["versions"]["error_position"] == poison
    assert "cannot parse the artifact URI" in report["versions"]["error"]
    assert report["versions"]["lag"] > 0
    assert (report["catalogue"]["status"], report["catalogue"]["lag"]) == ("running", 0)
    assert (report["deployments"]["status"], report["deployments"]["lag"]) == ("running", 0)

    # When more commands arrive
    later = a_model_story(ledger.registry, "after-the-failure")
    # Then the healthy projections follow them, and the failed one stays where it stopped
    wait_until(
        lambda: all(states(ledger)[n].position == later for n in ("catalogue", "deployments")),
        "the healthy projections follow new events",
    )
    still = states(ledger)["versions"]
    assert (still.status, still.position) == ("failed", before_poison)

    # When the fix is deployed (the worker restarts with the good code)
    stop_worker(ledger)
    start_worker(ledger)
    # Then the versions projection resumes from where it stopped, reaches the head,
    # and is exactly what a rebuild and a fold of the log give
    wait_until(lambda: all_at_head(ledger), "every projection at the head after the fix")
    fixed = states(ledger)["versions"]
    assert (fixed.error, fixed.error_position, fixed.generation) == (None, None, 1)
    verify_all(ledger)
    assert_read_model_matches_the_log(ledger)


# -- what a client sends never stops a projection ---------------------------------------

UNUSUAL_MODELS: list[dict[str, Any]] = [
    {"name": "nul-in-description", "description": "before\u0000after"},
    {"name": "nul-in-configuration", "configuration": {"k\u0000": ["v\u0000"]}},
    {"name": "huge-integers", "configuration": {"big": 2**70, "negative": -(2**70)}},
    {"name": "tiny-and-huge-floats", "configuration": {"a": 5e-324, "b": 1.7e308, "c": -0.0}},
    {"name": "astral \U0001f999", "description": "\U0010fffd \u202e", "tags": ["\U0001f999"]},
    {"name": "nested", "configuration": {"a": [[[[{"b": [None, True, 1.5, "x"]}]]]]}},
]


def test_nothing_a_client_can_send_stops_a_projection(ledger: Ledger, client: TestClient) -> None:
    # Given the app, with the projections running inside it (the embedded default)
    accepted: list[str] = []
    for body in UNUSUAL_MODELS:
        # When a client sends unusual, well-formed values
        created = client.post(MODELS, json={"task": "asr", "framework": "jax", **body})
        # Then each is refused as bad input, or taken...
        assert created.status_code in (201, 422), created.text
        if created.status_code == 422:
            continue
        model_id = created.json()["id"]
        accepted.append(model_id)
        train = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d", **body_of(body)})
        assert train.status_code in (202, 422), train.text
        # ...and then the catalogue shows exactly what was taken
        shown = model_now(client, model_id)
        assert shown.status_code == 200, shown.text
        folded, _ = get_model(ledger.event_log, UUID(model_id))
        assert shown.json() == json.loads(json.dumps(model_view(folded))), body
    assert accepted, "nothing was accepted"
    # and every projection is still running, at the head
    wait_until(lambda: all_at_head(ledger), "every projection at the head")
    assert all(item["status"] == "running" for item in client.get(ADMIN).json())
    verify_all(ledger)


def body_of(model: dict[str, Any]) -> dict[str, Any]:
    """The model's unusual configuration, as a training run's hyperparameters too."""
    return {"hyperparameters": model["configuration"]} if "configuration" in model else {}


# -- rebuilds: on request while serving, and on a version bump -----------------------


def test_a_rebuild_swaps_in_a_new_generation_while_queries_keep_answering(
    ledger: Ledger,
) -> None:
    # Given a catalogue of a few hundred models, served by the app
    write_models(ledger.registry, 150, seed=3)
    start_worker(ledger, options=RunnerOptions(poll_interval=0.02, rebuild_batch_size=50))
    with api_client(ledger) as client:
        wait_until(lambda: all_at_head(ledger), "the projections catch up")
        some = sorted(str(model_id) for model_id in logged_model_ids(ledger.registry))[:10]
        paths = [
            *(
                f"{MODELS}/{model_id}{tail}"
                for model_id in some
                for tail in ("", "/versions", "/deployments")
            ),
            f"{MODELS}/statistics?project=vision",
            f"{MODELS}/top-performing?metric=accuracy&project=vision",
            f"{MODELS}/search?project=vision&limit=100",
        ]

        def answer(path: str) -> Any:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            return response.json()

        before = {path: answer(path) for path in paths}

        # When an operator asks for a rebuild of the catalogue
        asked = client.post(f"{ADMIN}/catalogue/rebuild")
        assert asked.status_code == 202, asked.text
        # Then, while it rebuilds (and commands keep arriving, in another project),
        # every query keeps answering, with the same answers
        seen_in_progress, answered, stories = False, 0, 0
        for path in itertools.cycle(paths):
            catalogue = {item["name"]: item for item in client.get(ADMIN).json()}["catalogue"]
            if catalogue["generation"] == 2:
                break
            seen_in_progress |= (
                catalogue["status"] == "rebuilding" and catalogue["rebuild"] is not None
            )
            assert answer(path) == before[path], path
            answered += 1
            if answered % 10 == 0:
                a_model_story(ledger.registry, f"late-{stories}", project="late")
                stories += 1
            assert answered < 20_000, "the rebuild never swapped in"
        assert seen_in_progress, "the rebuild was never seen in progress"
        assert answered > 0

        # Then the admin view shows the new generation serving at the head, lag 0
        wait_until(lambda: all_at_head(ledger), "the projections reach the head")
        report = {item["name"]: item for item in client.get(ADMIN).json()}
        assert report["catalogue"]["generation"] == 2
        assert (report["catalogue"]["status"], report["catalogue"]["lag"]) == ("running", 0)
        assert report["catalogue"]["rebuild"] is None
        assert all(item["lag"] == 0 for item in report.values())
        # and the answers are unchanged (to the last digit: metric sums are exact),
        # the late models are there too
        for path in paths:
            now = answer(path)
            assert same(now, before[path]), (path, now, before[path])
        for story in range(stories):
            late = model_now(client, str(AIModel.create_id("late", f"late-{story}")))
            assert late.status_code == 200, late.text
            assert (late.json()["status"], late.json()["version"]) == ("deployed", 8)
    # and the old generation's tables are gone; every projection equals a rebuild
    assert not [
        t for t in inspect(ledger.read_engine).get_table_names() if t.startswith("catalogue_g1")
    ]
    verify_all(ledger)


def test_bumping_a_projections_version_rebuilds_it_into_a_new_generation_on_start(
    ledger: Ledger,
) -> None:
    # Given projections at the head of a log, generation 1
    write_models(ledger.registry, 80, seed=4)
    start_worker(ledger)
    wait_until(lambda: all_at_head(ledger), "the projections catch up")
    stop_worker(ledger)
    assert {name: s.generation for name, s in states(ledger).items()} == {
        "catalogue": 1,
        "versions": 1,
        "deployments": 1,
        "timeline": 1,
        "keys": 1,
        "webhooks": 1,
    }

    # When a worker starts with a new version of the catalogue's code
    class CatalogueV2(CatalogueProjection):
        version = CATALOGUE_VERSION + 1

    upgraded = (
        CatalogueV2,
        VersionsProjection,
        DeploymentsProjection,
        TimelineProjection,
        KeysProjection,
        WebhooksProjection,
    )
    start_worker(ledger, upgraded)
    # Then it rebuilds the catalogue into generation 2 and serves that, at the new version
    wait_until(
        lambda: (
            (states(ledger)["catalogue"].version, states(ledger)["catalogue"].generation)
            == (CATALOGUE_VERSION + 1, 2)
        ),
        "the new version swapped in",
    )
    # and carries on with new events from there
    a_model_story(ledger.registry, "after-the-upgrade")
    wait_until(lambda: all_at_head(ledger), "the projections reach the head")
    after = states(ledger)
    assert {name: s.generation for name, s in after.items()} == {
        "catalogue": 2,
        "versions": 1,
        "deployments": 1,
        "timeline": 1,
        "keys": 1,
        "webhooks": 1,
    }
    tables = inspect(ledger.read_engine).get_table_names()
    assert "catalogue_g2" in tables and "catalogue_g1" not in tables
    verify_all(ledger, upgraded)
    assert_read_model_matches_the_log(ledger)
