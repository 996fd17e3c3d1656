"""A metric's statistics are exact: live, rebuilt, verified and as-of answers agree to
the last digit whatever the batch boundaries, and each mean is the exact sum of the
values (as written: 0.1 is 0.1) over their count, rounded once. On both stores.

(A metric's mean was 0.61 live and 0.6099999999999999 after a rebuild: float sums
added in batch-dependent groupings.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from commands.handlers import handle_sync
from commands.messages import CompleteTraining, CreateModel, TrainModel, UpdateModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from projections.applying import ensure_projection
from projections.base import Projection
from projections.catalogue import CatalogueProjection
from projections.timeline import TimelineProjection
from projections.verify import verify_projection
from projections.worker import PROJECTIONS, ensure_projections
from queries.messages import ModelStatistics
from queries.past_statistics import statistics_as_of
from queries.projections import request_rebuild
from queries.reading import reading
from queries.statistics import model_statistics
from read_model.tables import ALL, CATALOGUE_VERSION, TIMELINE_VERSION, catalogue_tables
from read_model.timeline import NOW
from tests.support.ledgers import make_ledger
from tests.support.running import run_projection
from write_model.values import instant

CTX = CommandContext(actor="statistician")
KNOWN = {p.name for p in PROJECTIONS}
# The models of every story: (project, task); a re-task moves one to another task.
PLACES = (("vision", "classification"), ("vision", "detection"), ("speech", "asr"))
PROJECTS = sorted({project for project, _ in PLACES})
TASKS = sorted({task for _, task in PLACES})
Scope = tuple[str | None, str | None]  # project, task; None: every one
SCOPES: list[Scope] = [
    (None, None),
    *((p, None) for p in PROJECTS),
    *((None, t) for t in TASKS),
    *((p, t) for p in PROJECTS for t in TASKS),
]
EVERYTHING: Scope = (None, None)


# -- the story's steps ----------------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    model: int
    accuracy: float


@dataclass(frozen=True)
class Retasked:
    model: int
    task: str


@dataclass(frozen=True)
class Projected:
    """The catalogue and the timeline take what has arrived, in batches of this size."""

    batch_size: int


Step = Trained | Retasked | Projected

HUGE = 1.7976931348623157e308
WRITTEN = (0.1, 0.2, 0.7, 0.61, 0.35, 0.78, 1 / 3, 3.0, -0.0, 1e16, -2.5)
EXTREME = (5e-324, -5e-324, 1e-300, 2.2250738585072014e-308, HUGE, -HUGE, 1e308)
accuracies = st.one_of(
    st.sampled_from(WRITTEN),
    st.sampled_from(EXTREME),
    st.decimals(0, 1, places=2).map(float),
    st.floats(allow_nan=False, allow_infinity=False),
)
models = st.integers(0, len(PLACES) - 1)
steps = st.lists(
    st.one_of(
        *[st.builds(Trained, models, accuracies)] * 4,
        st.builds(Retasked, models, st.sampled_from(TASKS)),
        *[st.builds(Projected, st.integers(1, 4))] * 2,
    ),
    min_size=3,
    max_size=10,
)


# -- the oracle: every model's values, as written ---------------------------------------


@dataclass
class Model:
    id: UUID
    project: str
    task: str
    accuracies: list[float] = field(default_factory=list)


def expected_accuracy(models: list[Model], scope: Scope) -> Any:
    """count, mean (the exact sum of the written values over their count, rounded
    once), min and max; None when no model in scope has a value."""
    project, task = scope
    values = [
        v
        for m in models
        if project in (None, m.project) and task in (None, m.task)
        for v in m.accuracies
    ]
    if not values:
        return None
    total = sum((Fraction(repr(v)) for v in values), Fraction(0))
    return {"count": len(values), "mean": float(total / len(values)), "min": min(values),
            "max": max(values), "direction": "maximize", "best": max(values)}  # fmt: skip


# -- driving the ledger -----------------------------------------------------------------


def create(ledger: Ledger, number: int, project: str, task: str) -> Model:
    command = CreateModel(name=f"m{number}", project=project, task=task, framework="jax")
    return Model(UUID(handle_sync(ledger.registry, command, CTX).id), project, task)


def train(ledger: Ledger, model: Model, accuracy: float) -> None:
    start = TrainModel(model_id=model.id, dataset="s3://data")
    run_id = handle_sync(ledger.registry, start, CTX).details["run_id"]
    done = CompleteTraining(model_id=model.id, run_id=run_id, metrics={"accuracy": accuracy})
    handle_sync(ledger.registry, done, CTX)
    model.accuracies.append(accuracy)


@cache
def timeline_checkpointing_every(events: int) -> type[TimelineProjection]:
    """The timeline with a checkpoint every few events, so a story crosses several."""
    return type(f"TimelineEvery{events}", (TimelineProjection,), {"checkpoint_every": events})


def project(ledger: Ledger, timeline: type[Projection], batch_size: int) -> None:
    run_projection(ledger, CatalogueProjection, batch_size=batch_size)
    run_projection(ledger, timeline, batch_size=batch_size)


def rebuild(ledger: Ledger, projection: type[Projection]) -> None:
    """Blue/green, from the whole log in one batch."""
    request_rebuild(ledger.write_engine, projection.name, KNOWN)
    run_projection(ledger, projection, batch_size=1000)


def accuracy_now(ledger: Ledger, *scopes: Scope) -> list[Any]:
    """The live statistics of accuracy in each scope (from the catalogue)."""
    with reading(ledger.read_engine, "catalogue", CATALOGUE_VERSION) as snapshot:
        answers = [model_statistics(snapshot, question(scope)) for scope in scopes]
    return [answer["metrics"].get("accuracy") for answer in answers]


def accuracy_as_of(ledger: Ledger, *moments: tuple[str, Scope]) -> list[Any]:
    """The statistics of accuracy as of each (time, scope) (from the timeline)."""
    with reading(ledger.read_engine, "timeline", TIMELINE_VERSION) as snapshot:
        answers = [statistics_as_of(snapshot, question(s), as_of) for as_of, s in moments]
    return [answer["metrics"].get("accuracy") for answer in answers]


def question(scope: Scope) -> ModelStatistics:
    project, task = scope
    return ModelStatistics(project=project, task=task)


def now() -> str:
    return instant(datetime.now().astimezone())


# -- the property -----------------------------------------------------------------------


@pytest.mark.slow  # a property over many stores: make test, not test-fast
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(story=steps, checkpoint_every=st.integers(1, 3), last_batch=st.integers(1, 4))
def test_statistics_are_exact_live_rebuilt_verified_and_as_of(
    new_store: Callable[[], str], story: list[Step], checkpoint_every: int, last_batch: int
) -> None:
    # Given models trained with values of every kind (0.1, 0.61, tiny, huge...),
    # projected live in batches at boundaries hypothesis chose, checkpointed often
    ledger = make_ledger(new_store(), db_pool_size=2)
    timeline = timeline_checkpointing_every(checkpoint_every)
    try:
        for projection in (CatalogueProjection, timeline):
            ensure_projection(ledger.write_engine, projection)
        registry = [create(ledger, n, p, t) for n, (p, t) in enumerate(PLACES)]
        moments: list[tuple[str, Any]] = []  # a time, and the whole registry's accuracy then
        for step in story:
            if isinstance(step, Trained):
                train(ledger, registry[step.model], step.accuracy)
            elif isinstance(step, Retasked):
                model = registry[step.model]
                handle_sync(ledger.registry, UpdateModel(model_id=model.id, task=step.task), CTX)
                model.task = step.task
            else:
                project(ledger, timeline, step.batch_size)
            moments.append((now(), expected_accuracy(registry, EVERYTHING)))
        project(ledger, timeline, last_batch)

        # Then the live statistics are the exact ones, in every scope
        expected = [expected_accuracy(registry, scope) for scope in SCOPES]
        assert accuracy_now(ledger, *SCOPES) == expected
        # and verify rebuilds each projection (in one batch) and finds the very same rows
        for projection in (CatalogueProjection, timeline):
            verdict = verify_projection(ledger.write_engine, ledger.event_log, projection)
            assert verdict.consistent, verdict.differences
        # and the catalogue rebuilt blue/green in one batch answers the same
        rebuild(ledger, CatalogueProjection)
        assert accuracy_now(ledger, *SCOPES) == expected
        # and as of each moment, through the checkpoints, the statistics are those of then
        asked = [(as_of, EVERYTHING) for as_of, _ in moments]
        assert accuracy_as_of(ledger, *asked) == [then for _, then in moments]
        assert accuracy_as_of(ledger, *((NOW, scope) for scope in SCOPES)) == expected
    finally:
        ledger.close()


# -- stories ----------------------------------------------------------------------------


def test_a_fifth_seven_tenths_and_a_tenth_sum_to_exactly_one(ledger: Ledger) -> None:
    # Given a model trained to 0.2, projected, then trained to 0.7 and to 0.1, projected
    # in one batch
    ensure_projections(ledger.write_engine)
    model = create(ledger, 0, "vision", "classification")
    train(ledger, model, 0.2)
    project(ledger, TimelineProjection, batch_size=100)
    train(ledger, model, 0.7)
    train(ledger, model, 0.1)
    project(ledger, TimelineProjection, batch_size=100)
    # Then the statistics keep the sum as exactly 1 (floats made it 0.9999999999999998)
    with reading(ledger.read_engine, "catalogue", CATALOGUE_VERSION) as snapshot:
        stats = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name).metric_stats
        total = snapshot.conn.execute(
            select(stats.c.total).where(stats.c.project == ALL, stats.c.task == ALL)
        ).scalar_one()
    assert total == Decimal(1)
    # and the mean is a third of it, rounded once: live, as of now, and after rebuilds
    third: dict[str, Any] = {"count": 3, "mean": float(Fraction(1, 3)), "min": 0.1, "max": 0.7}
    third.update(direction="maximize", best=0.7)  # (accuracy: the higher the better)
    assert accuracy_now(ledger, EVERYTHING) == accuracy_as_of(ledger, (NOW, EVERYTHING)) == [third]
    for projection in (CatalogueProjection, TimelineProjection):
        rebuild(ledger, projection)
    assert accuracy_now(ledger, EVERYTHING) == accuracy_as_of(ledger, (NOW, EVERYTHING)) == [third]


STATISTICS = "/api/v1/models/statistics"
ADMIN = "/api/v1/admin/projections"


@dataclass
class Client:
    """Commands that remember their position; reads that wait for it."""

    http: TestClient
    position: int = 0

    def send(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        self.position = max(self.position, answer["position"])
        return answer

    def trained(self, model_id: str, accuracy: float) -> None:
        """Trained, then read: the next command lands in another batch."""
        run = self.send(f"/api/v1/models/{model_id}/train", {"dataset": "s3://d"}, 202)
        complete = f"/api/v1/models/{model_id}/training-runs/{run['run_id']}/complete"
        self.send(complete, {"metrics": {"accuracy": accuracy}})
        self.accuracy()

    def accuracy(self, **params: Any) -> Any:
        response = self.http.get(STATISTICS, params={"min_position": self.position, **params})
        assert response.status_code == 200, response.text
        return response.json()["metrics"]["accuracy"]

    def catalogue_generation(self) -> int:
        catalogue = {p["name"]: p for p in self.http.get(ADMIN).json()}["catalogue"]
        done = catalogue["status"] == "running" and catalogue["rebuild"] is None
        return int(catalogue["generation"]) if done else 0


def test_a_mean_of_0_61_is_0_61_after_a_rebuild_too(client: TestClient) -> None:
    # Given model a trained to 0.35, model b to 0.7, then a again to 0.78, each
    # read back before the next (so the live projection adds them in three batches)
    api = Client(client)
    a, b = (
        api.send("/api/v1/models", {"name": n, "task": "asr", "framework": "jax"}, 201)["id"]
        for n in ("a", "b")
    )
    for model_id, accuracy in ((a, 0.35), (b, 0.7), (a, 0.78)):
        api.trained(model_id, accuracy)
    # Then the mean is 1.83 / 3 = 0.61 (floats had made it 0.6099999999999999)
    exact: dict[str, Any] = {"count": 3, "mean": 0.61, "min": 0.35, "max": 0.78}
    exact.update(direction="maximize", best=0.78)
    assert api.accuracy() == exact
    # When an operator rebuilds the catalogue (from the whole log, in one batch)
    assert client.post(f"{ADMIN}/catalogue/rebuild").status_code == 202
    deadline = time.monotonic() + 60
    while api.catalogue_generation() != 2:
        assert time.monotonic() < deadline, "the rebuild never swapped in"
        time.sleep(0.02)
    # Then the statistics are the same, to the last digit, and as of now too
    assert api.accuracy() == exact
    assert api.accuracy(as_of=now()) == exact
