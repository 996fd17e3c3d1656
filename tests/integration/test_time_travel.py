"""Time travel on both stores: for random histories and random times T, what the
registry answers "as of T" equals a fold of exactly the events recorded at or
before T: each model (from the log), and what served each environment (from
the deployments projection, per model and registry-wide)."""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from commands.archive import export_events, import_events
from commands.registry import ModelRegistry
from modelledger.bootstrap import Ledger
from projections.base import Projection
from projections.catalogue import CatalogueProjection
from projections.deployments import DeploymentsProjection
from projections.timeline import TimelineProjection
from projections.worker import ensure_projections
from queries.deployments import deployed, model_deployments
from queries.errors import UnknownModel
from queries.leaderboard import top_performing
from queries.messages import ListDeployments, ModelStatistics, SearchModels, TopPerforming
from queries.models import get_model, model_view
from queries.past_statistics import statistics_as_of
from queries.reading import reading
from queries.search import search_models
from queries.statistics import model_statistics
from read_model.tables import CATALOGUE_VERSION, DEPLOYMENTS_VERSION, TIMELINE_VERSION
from tests.support.histories import (
    CatchUp,
    Played,
    Rebuild,
    Step,
    histories,
    history_of,
    play_command,
)
from tests.support.ledgers import make_ledger
from tests.support.running import run_projection
from write_model.model import AIModel
from write_model.values import instant


def play_and_project(
    ledger: Ledger, history: list[Step], projection: type[Projection], batch_size: int
) -> Played:
    """The history's commands (its projection steps aside), then ``projection`` to the head."""
    ensure_projections(ledger.write_engine)
    played = Played()
    for step in history:
        if not isinstance(step, CatchUp | Rebuild):
            play_command(ledger.registry, step, played)
    run_projection(ledger, projection, batch_size=batch_size)
    return played


def fold_until(events: list[tuple[int, AIModel.Event]], moment: datetime) -> AIModel | None:
    """The oracle: the model from exactly its events recorded at or before ``moment``."""
    model: AIModel | None = None
    for _, event in events:
        if event.timestamp <= moment:
            model = cast(AIModel, event.mutate(model))
    return model


def moments_of(registry: ModelRegistry, ids: list[UUID], rng: random.Random) -> list[datetime]:
    """Times worth asking about: each event's own time, just before and after it."""
    times = [event.timestamp for i in ids for _, event in history_of(registry, i)]
    picked = rng.sample(times, min(6, len(times)))
    tick = timedelta(microseconds=1)
    return [moment + shift for moment in picked for shift in (-tick, timedelta(0), tick)]


def serving_at(engine: Engine, moment: datetime, **filters: Any) -> dict[tuple[str, str], int]:
    with reading(engine, "deployments", DEPLOYMENTS_VERSION) as snapshot:
        query = ListDeployments(limit=1000, **filters)
        answer = deployed(snapshot, query, instant(moment))
    return {(i["model_id"], i["environment"]): i["model_version"] for i in answer["items"]}


def check_model_at(ledger: Ledger, model_id: UUID, moment: datetime) -> dict[tuple[str, str], int]:
    """The model as of ``moment`` against the oracle; what it served then."""
    expected = fold_until(history_of(ledger.registry, model_id), moment)
    try:
        got = model_view(get_model(ledger.event_log, model_id, as_of=moment)[0])
    except UnknownModel:
        got = None
    assert got == (model_view(expected) if expected else None), moment
    with reading(ledger.read_engine, "deployments", DEPLOYMENTS_VERSION) as snapshot:
        answer = model_deployments(snapshot, model_id, instant(moment))
    served = {env: d.model_version for env, d in (expected.deployments if expected else {}).items()}
    assert {env: s["model_version"] for env, s in answer["current"].items()} == served
    assert all(s["from_time"] <= instant(moment) for s in answer["history"])
    return {(str(model_id), env): version for env, version in served.items()}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories(max_steps=35), seed=st.integers(0, 2**16))
def test_as_of_answers_equal_a_fold_of_the_events_recorded_by_then(
    new_store: Callable[[], str], history: list[Step], seed: int
) -> None:
    # Given a random history of commands, projected
    ledger = make_ledger(new_store(), db_pool_size=2)
    try:
        played = play_and_project(ledger, history, DeploymentsProjection, batch_size=4)
        ids = list(played.models)
        if not ids:
            return
        # When the registry is asked about random moments of that history
        for moment in moments_of(ledger.registry, ids, random.Random(seed)):
            # Then each model, and what it served, is the fold of its events up to then
            expected: dict[tuple[str, str], int] = {}
            for model_id in ids:
                expected |= check_model_at(ledger, model_id, moment)
            # and the registry-wide answer is every model's together
            assert serving_at(ledger.read_engine, moment) == expected
            for environment in {env for _, env in expected}:
                only = {k: v for k, v in expected.items() if k[1] == environment}
                assert serving_at(ledger.read_engine, moment, environment=environment) == only
    finally:
        ledger.close()


# -- search, statistics and leaderboards as of T ----------------------------------------

QUESTIONS: list[tuple[str, Any]] = [
    ("search", SearchModels(limit=100)),
    ("search", SearchModels(status="archived", limit=100)),
    ("search", SearchModels(q="model", tag=["nlp"], limit=100)),
    ("search", SearchModels(q="bet", project="vision", limit=100)),
    ("search", SearchModels(task="classification", sort="updated_at", limit=100)),
    ("search", SearchModels(metric="accuracy", sort="metric", limit=100)),
    ("search", SearchModels(metric="loss", min_value=-10, max_value=10, limit=100)),
    ("statistics", ModelStatistics()),
    ("statistics", ModelStatistics(project="speech")),
    ("statistics", ModelStatistics(task="classification")),
    ("top", TopPerforming(metric="accuracy", limit=100)),
    ("top", TopPerforming(metric="wer", task="asr", limit=100)),
]


def ask(snapshot: Any, kind: str, question: Any, as_of: str | None) -> Any:
    if kind == "search":
        return search_models(snapshot, question, as_of)
    if kind == "top":
        return top_performing(snapshot, question, as_of)
    if as_of is None:
        return model_statistics(snapshot, question)
    return statistics_as_of(snapshot, question, as_of)


def the_registry_then(ledger: Ledger, moment: datetime) -> Ledger:
    """The oracle: a new store holding exactly the events recorded at or before
    ``moment`` (each model's own are a prefix of its history), projected now."""
    kept = [
        line
        for line in exported_lines(ledger)
        if "footer" in line or "format" in line or line["recorded"] <= moment
    ]
    then = make_ledger("memory://")
    ensure_projections(then.write_engine)
    import_events(then.registry.recorder, then.registry.mapper, to_file(kept), progress=noop)
    run_projection(then, CatalogueProjection, batch_size=100)
    return then


def exported_lines(ledger: Ledger) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_events(ledger.event_log, out, progress=noop)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    for line in lines:
        if "state" in line:
            stored = ledger.registry.recorder.select_notifications(line["position"], 1)[0]
            line["recorded"] = cast(
                AIModel.Event, ledger.registry.mapper.to_domain_event(stored)
            ).timestamp
    return lines


def to_file(lines: list[dict[str, Any]]) -> list[str]:
    events = [{k: v for k, v in line.items() if k != "recorded"} for line in lines[1:-1]]
    footer = {"footer": {"events": len(events), "last_position": 0}}
    return [json.dumps(line) for line in [lines[0], *events, footer]]


def noop(_: int) -> None:
    return None


def assert_same_answer(kind: str, got: Any, expected: Any) -> None:
    if kind != "statistics":
        assert got == expected
        return
    got_metrics, expected_metrics = got.pop("metrics"), expected.pop("metrics")
    assert got == expected
    assert got_metrics.keys() == expected_metrics.keys()
    for name, stats in got_metrics.items():
        for key, value in stats.items():
            if isinstance(value, str):  # the direction
                assert value == expected_metrics[name][key], (name, key)
            else:
                assert math.isclose(value, expected_metrics[name][key], rel_tol=1e-9, abs_tol=1e-9)


@cache
def timeline_checkpointing_every(events: int) -> type[TimelineProjection]:
    """The timeline with a checkpoint every few events, so a short history has many."""
    return type(f"TimelineEvery{events}", (TimelineProjection,), {"checkpoint_every": events})


def skewed(lines: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The same history with each model's events moved by its own minutes: the
    log's order no longer follows the events' times (as when clocks disagree)."""
    shifts: dict[str, timedelta] = {}
    for line in lines:
        if "state" in line:
            shift = shifts.setdefault(line["model_id"], timedelta(minutes=rng.randint(-30, 30)))
            stamp = line["state"]["timestamp"]
            stamp["_data_"] = (datetime.fromisoformat(stamp["_data_"]) + shift).isoformat()
    return lines


@pytest.mark.slow  # a property over many stores: make test, not test-fast
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=histories(max_steps=35),
    seed=st.integers(0, 2**16),
    checkpoint_every=st.sampled_from([1, 2, 5, 10_000]),
    skew=st.booleans(),
)
def test_search_statistics_and_leaderboards_as_of_T_equal_the_registry_of_events_until_T(
    new_store: Callable[[], str],
    history: list[Step],
    seed: int,
    checkpoint_every: int,
    skew: bool,
) -> None:
    # Given a random history of commands, its times skewed per model or not,
    # with the timeline projected in small batches and checkpointed every few events
    ledger = make_ledger(new_store(), db_pool_size=2)
    timeline = timeline_checkpointing_every(checkpoint_every)
    try:
        played = play_and_project(ledger, history, timeline, batch_size=3)
        if not played.models:
            return
        if skew:
            lines = skewed(exported_lines(ledger), random.Random(seed))
            ledger.close()
            ledger = make_ledger(new_store(), db_pool_size=2)
            ensure_projections(ledger.write_engine)
            import_events(
                ledger.registry.recorder, ledger.registry.mapper, to_file(lines), progress=noop
            )
            run_projection(ledger, timeline, batch_size=3)
        # When search, statistics and leaderboards are asked as of random moments
        for moment in moments_of(ledger.registry, played.models, random.Random(seed))[::4]:
            then = the_registry_then(ledger, moment)
            try:
                for kind, question in QUESTIONS:
                    # Then each answer is the one a registry of only the events until then gives
                    with reading(then.read_engine, "catalogue", CATALOGUE_VERSION) as snapshot:
                        expected = ask(snapshot, kind, question, None)
                    with reading(ledger.read_engine, "timeline", TIMELINE_VERSION) as snapshot:
                        got = ask(snapshot, kind, question, instant(moment))
                    assert_same_answer(kind, got, expected)
            finally:
                then.close()
    finally:
        ledger.close()
