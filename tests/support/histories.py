"""Command histories for the projection tests, and what a fold of the log says the
read model must hold.

- ``histories()``: a hypothesis strategy of random *valid* command stories over a
  few models (create, update, train, complete/fail, deploy, roll back, undeploy,
  archive), with projection steps (catch up in batches of a random size, rebuild)
  interleaved; ``play_command`` sends one through ``commands.handlers.handle_sync``.
- ``write_models``: thousands of realistic events fast (domain methods, saved in
  bulk), for the worker-process tests that need a long catch-up.
- ``a_model_story``: one model's short life through the command handlers.
- ``assert_read_model_matches_the_log``: every projection's rows against a direct
  fold of the events (the oracle), including the statistics counters.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from uuid import UUID

from eventsourcing.utils import get_topic
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from commands.handlers import handle_sync
from commands.messages import (
    ArchiveModel,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
    UpdateModel,
    UpdateVersion,
)
from commands.metric_definitions import (
    DefineMetric,
    RemoveMetricDefinition,
    define_metric,
    read_definition,
    remove_metric_definition,
)
from commands.registry import CommandContext, CommandResult, ModelRegistry
from modelledger.bootstrap import Ledger
from projections.follow import read_page
from queries.catalogue import catalogue_view, model_row, model_versions
from queries.deployments import model_deployments
from queries.directions import Directions, directions_now
from queries.messages import ModelStatistics
from queries.models import get_model, model_view
from queries.ports import EventLog
from queries.reading import Snapshot
from queries.statistics import model_statistics
from read_model.state import read_states
from read_model.tables import ALL, catalogue_tables
from write_model.errors import MetricDefinitionNotFound
from write_model.metric_definition import Direction
from write_model.model import AIModel
from write_model.values import EventMetadata

PROJECTS = ("vision", "speech")
TASKS = ("classification", "regression", "asr")
FRAMEWORKS = ("pytorch", "jax", "sklearn")
TAGS = ("nlp", "cv", "gpu", "prod")
ENVIRONMENTS = ("staging", "production", "canary")
METRICS = ("accuracy", "f1", "loss", "val_loss", "wer")
ENDPOINTS = (None, "https://a.example/", "https://b.example/")
POISON = "s3://poison/artifact"  # an artifact URI a broken projection cannot handle

# -- the steps of a history -------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    model: int
    project: str
    task: str
    framework: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Update:
    model: int
    changes: dict[str, Any]


@dataclass(frozen=True)
class Describe:
    """Describe and tag one of the model's versions (modulo), when it has one."""

    model: int
    version: int
    description: str
    tags: list[str]


@dataclass(frozen=True)
class Declare:
    """Declare how a metric is read (None: remove its definition, if it has one)."""

    metric: str
    direction: str | None


@dataclass(frozen=True)
class Train:
    model: int


@dataclass(frozen=True)
class Complete:
    model: int
    run: int  # which of the model's running runs (modulo)
    metrics: dict[str, float]
    artifact_uri: str | None


@dataclass(frozen=True)
class Fail:
    model: int
    run: int


@dataclass(frozen=True)
class Deploy:
    model: int
    environment: str
    version: int | None  # which trained version (modulo); None: the latest
    endpoint_url: str | None


@dataclass(frozen=True)
class Undeploy:
    model: int
    environment: str


@dataclass(frozen=True)
class RollBack:
    model: int
    environment: str


@dataclass(frozen=True)
class Archive:
    """Undeploys the model everywhere first (archiving a deployed model is refused)."""

    model: int


@dataclass(frozen=True)
class CatchUp:
    """The projections process what has arrived: at most ``batches`` batches of
    ``batch_size`` notifications each (None: up to the head)."""

    batch_size: int
    batches: int | None


@dataclass(frozen=True)
class Rebuild:
    """One projection is rebuilt blue/green (in batches of ``batch_size``) and swapped in."""

    projection: str
    batch_size: int


Command = (
    Create
    | Update
    | Describe
    | Declare
    | Train
    | Complete
    | Fail
    | Deploy
    | Undeploy
    | RollBack
    | Archive
)
Step = Command | CatchUp | Rebuild

model_index = st.integers(0, 4)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False) | st.integers(-3, 3).map(float)
metrics = st.dictionaries(st.sampled_from(METRICS), finite, max_size=3)
tags = st.lists(st.sampled_from(TAGS), max_size=3, unique=True).map(tuple)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=2), inner)
    ),
    max_leaves=5,
)
changes = st.fixed_dictionaries(
    {},
    optional={
        "description": st.sampled_from(("", "better", "best")),
        "task": st.sampled_from(TASKS),
        "framework": st.sampled_from(FRAMEWORKS),
        "tags": tags.map(list),
        "owner": st.sampled_from(("ada", "grace")),
        "configuration": st.dictionaries(st.sampled_from(("lr", "layers", "")), json_values),
    },
)
environments = st.sampled_from(ENVIRONMENTS)
versions = st.none() | st.integers(0, 5)
endpoints = st.sampled_from(ENDPOINTS)
artifacts = st.sampled_from((None, "s3://m"))

creates = st.builds(
    Create,
    model=model_index,
    project=st.sampled_from(PROJECTS),
    task=st.sampled_from(TASKS),
    framework=st.sampled_from(FRAMEWORKS),
    tags=tags,
)
commands: st.SearchStrategy[Command] = st.one_of(
    # repeated to weigh them: archiving, which ends a model's story, is rare
    *[st.builds(Train, model_index)] * 3,
    *[st.builds(Complete, model_index, st.integers(0, 3), metrics, artifacts)] * 4,
    *[st.builds(Deploy, model_index, environments, versions, endpoints)] * 4,
    *[st.builds(RollBack, model_index, environments)] * 2,
    *[st.builds(Update, model_index, changes)] * 2,
    st.builds(Describe, model_index, st.integers(0, 3), st.sampled_from(["", "eu"]), tags),
    st.builds(Declare, st.sampled_from(METRICS), st.sampled_from([None, "minimize", "maximize"])),
    *[creates] * 2,
    st.builds(Fail, model_index, st.integers(0, 3)),
    st.builds(Undeploy, model_index, environments),
    st.builds(Archive, model_index),
)
catch_ups = st.builds(CatchUp, st.integers(1, 8), st.none() | st.integers(1, 4))
rebuilds = st.builds(
    Rebuild, st.sampled_from(("catalogue", "versions", "deployments")), st.integers(1, 12)
)


def _with_rebuild(rest: list[Step], rebuild: Rebuild | None, where: int) -> list[Step]:
    if rebuild is None:
        return rest
    at = where % (len(rest) + 1)
    return [*rest[:at], rebuild, *rest[at:]]


def histories(max_steps: int = 45) -> st.SearchStrategy[list[Step]]:
    """Models first, then commands with catch-ups of the projections between them, and
    at most one rebuild somewhere (rebuilds are slow: DDL)."""
    later: st.SearchStrategy[Step] = st.one_of(commands, commands, commands, catch_ups)
    story = st.builds(
        lambda first, rest: [*first, *rest],
        st.lists(creates, min_size=2, max_size=4),
        st.lists(later, min_size=15, max_size=max_steps),
    )
    return st.builds(_with_rebuild, story, st.none() | rebuilds, st.integers(0, max_steps))


# -- playing a history through the command handlers --------------------------------------


@dataclass
class Played:
    """The models created so far, in creation order (steps name them modulo this)."""

    models: list[UUID] = field(default_factory=list)
    commands: int = 0


def play_command(registry: ModelRegistry, step: Command, played: Played) -> None:
    """Send the commands ``step`` stands for, made valid: it goes to the model it names
    or, if that one cannot take it (archived, nothing trained to deploy, nothing to
    roll back...), to the next model that can; with none, the step is skipped."""
    ctx = CommandContext(actor=f"actor-{played.commands % 3}")
    if isinstance(step, Declare):
        _declare(registry, step, ctx, played)
        return
    if isinstance(step, Create):
        name = f"model-{step.model}"
        if AIModel.create_id(step.project, name) in played.models:
            return  # the name is taken in that project
        create = CreateModel(
            name=name,
            project=step.project,
            task=step.task,
            framework=step.framework,
            tags=list(step.tags),
            description=f"model {step.model}",
        )
        played.models.append(UUID(_send(registry, create, ctx, played).id))
        return
    count = len(played.models)
    if isinstance(step, Archive) and sum(not _get(registry, m).archived for m in played.models) < 3:
        return  # keep two models or more going: an archived one's story is over
    for turn in range(count):
        model_id = played.models[(step.model + turn) % count]
        model = _get(registry, model_id)
        if not model.archived and _play_on(registry, step, model_id, model, ctx, played):
            return


def _declare(registry: ModelRegistry, step: Declare, ctx: CommandContext, played: Played) -> None:
    played.commands += 1
    if step.direction is not None:
        command = DefineMetric(name=step.metric, direction=Direction(step.direction))
        define_metric(registry, command, ctx)
        return
    with suppress(MetricDefinitionNotFound):  # (nothing declared: nothing to remove)
        remove_metric_definition(registry, RemoveMetricDefinition(name=step.metric), ctx)


def declared_directions(registry: ModelRegistry) -> Directions:
    """The definitions in force, folded from the log."""
    found = {name: read_definition(registry, name) for name in METRICS}
    return Directions({n: d.direction for n, d in found.items() if d is not None and d.declared})


def _get(registry: ModelRegistry, model_id: UUID) -> AIModel:
    return cast(AIModel, registry.repository.get(model_id))


def _send(
    registry: ModelRegistry, command: Any, ctx: CommandContext, played: Played
) -> CommandResult:
    played.commands += 1
    return handle_sync(registry, command, ctx)


def _play_on(
    registry: ModelRegistry,
    step: Command,
    model_id: UUID,
    model: AIModel,
    ctx: CommandContext,
    played: Played,
) -> bool:
    """The step's commands to this (active) model, if it can take them."""

    def send(command: Any) -> CommandResult:
        return _send(registry, command, ctx, played)

    if isinstance(step, Update):
        send(UpdateModel(model_id=model_id, **step.changes))
    elif isinstance(step, Describe):
        if not model.versions:
            return False
        number = 1 + step.version % len(model.versions)
        send(
            UpdateVersion(
                model_id=model_id,
                model_version=number,
                description=step.description,
                tags=step.tags,
            )
        )
    elif isinstance(step, Train):
        send(TrainModel(model_id=model_id, dataset="s3://data"))
    elif isinstance(step, Complete | Fail):
        running = [run.run_id for run in model.training_runs.values() if run.state == "running"]
        if running:
            run_id = running[step.run % len(running)]
        else:  # start one to finish
            run_id = send(TrainModel(model_id=model_id, dataset="s3://data")).details["run_id"]
        if isinstance(step, Complete):
            send(
                CompleteTraining(
                    model_id=model_id,
                    run_id=run_id,
                    metrics=step.metrics,
                    artifact_uri=step.artifact_uri,
                )
            )
        else:
            send(FailTraining(model_id=model_id, run_id=run_id, reason="out of memory"))
    elif isinstance(step, Deploy):
        if not model.versions:
            return False
        version = None if step.version is None else 1 + step.version % len(model.versions)
        send(
            DeployModel(
                model_id=model_id,
                environment=step.environment,
                model_version=version,
                endpoint_url=step.endpoint_url,
            )
        )
    elif isinstance(step, Undeploy | RollBack):
        for environment in (step.environment, *sorted(model.deployments)):  # asked one first
            deployment = model.deployments.get(environment)
            if deployment is None:
                continue
            if isinstance(step, Undeploy):
                send(UndeployModel(model_id=model_id, environment=environment))
                return True
            if deployment.previous_versions:
                send(RollBackDeployment(model_id=model_id, environment=environment))
                return True
        if isinstance(step, Undeploy) or len(model.versions) < 2:
            return False
        # Nothing to roll back here yet: deploy two versions one after the other first.
        serving = model.deployments.get(step.environment)
        first = serving.model_version if serving else 1
        second = 1 + first % len(model.versions)
        for version in (first, second):
            send(
                DeployModel(model_id=model_id, environment=step.environment, model_version=version)
            )
        send(RollBackDeployment(model_id=model_id, environment=step.environment))
    else:
        for environment in sorted(model.deployments):
            send(UndeployModel(model_id=model_id, environment=environment))
        send(ArchiveModel(model_id=model_id, reason="retired"))
    return True


# -- many events, fast ---------------------------------------------------------------------


def write_models(registry: ModelRegistry, count: int, *, seed: int = 1, chunk: int = 50) -> int:
    """``count`` models with realistic lives (training, failures, deployments, rollbacks,
    undeploys, updates, archives), saved ``chunk`` models per transaction. Returns the
    number of events written."""
    rng = random.Random(seed)
    meta = EventMetadata("bulk-writer", str(uuid.uuid4()), str(uuid.uuid4()))
    pending: list[AIModel] = []
    events = 0
    for index in range(count):
        model = _a_life(index, seed, rng, meta)
        events += model.version
        pending.append(model)
        if len(pending) == chunk:
            registry.save(*pending)
            pending = []
    if pending:
        registry.save(*pending)
    return events


def _a_life(index: int, seed: int, rng: random.Random, meta: EventMetadata) -> AIModel:
    model = AIModel.register(
        name=f"bulk-{seed}-{index}",
        project=rng.choice(PROJECTS),
        task=rng.choice(TASKS),
        framework=rng.choice(FRAMEWORKS),
        tags=rng.sample(TAGS, rng.randint(0, 2)),
        configuration={"seed": index},
        meta=meta,
    )
    for attempt in range(rng.randint(0, 3)):
        run_id = f"run-{attempt}"
        model.start_training(
            run_id=run_id, dataset="s3://data", hyperparameters={}, backend="external", meta=meta
        )
        if rng.random() < 0.2:
            model.fail_training(run_id=run_id, reason="preempted", meta=meta)
        else:
            values = {name: round(rng.uniform(0, 1), 4) for name in rng.sample(METRICS, 2)}
            model.complete_training(run_id=run_id, metrics=values, artifact_uri=None, meta=meta)
    if model.versions and rng.random() < 0.7:
        for environment in rng.sample(ENVIRONMENTS, rng.randint(1, 2)):
            for version in range(1, len(model.versions) + 1):
                model.deploy(
                    environment=environment, model_version=version, endpoint_url=None, meta=meta
                )
            if len(model.versions) > 1 and rng.random() < 0.3:
                model.roll_back(environment=environment, meta=meta)
            if rng.random() < 0.2:
                model.undeploy(environment=environment, meta=meta)
    if rng.random() < 0.2:
        model.update({"task": rng.choice(TASKS), "tags": ["updated"]}, meta)
    if not model.deployments and rng.random() < 0.15:
        model.archive(reason="retired", meta=meta)
    return model


def a_model_story(registry: ModelRegistry, name: str, project: str = "live") -> int:
    """Create, train twice, deploy both versions, roll back: through the handlers.
    Returns the position of the story's last event."""
    ctx = CommandContext(actor="live")
    model_id = UUID(
        handle_sync(
            registry, CreateModel(name=name, project=project, task="asr", framework="jax"), ctx
        ).id
    )
    for accuracy in (0.5, 0.75):
        train = TrainModel(model_id=model_id, dataset="d")
        run_id = handle_sync(registry, train, ctx).details["run_id"]
        complete = CompleteTraining(model_id=model_id, run_id=run_id, metrics={"wer": accuracy})
        handle_sync(registry, complete, ctx)
    for version in (1, 2):
        deploy = DeployModel(model_id=model_id, environment="production", model_version=version)
        handle_sync(registry, deploy, ctx)
    rolled = RollBackDeployment(model_id=model_id, environment="production")
    position = handle_sync(registry, rolled, ctx).position
    assert position is not None
    return position


def head(registry: ModelRegistry) -> int:
    return int(registry.recorder.max_notification_id() or 0)


# -- the oracle: a direct fold of the log --------------------------------------------------


def logged_model_ids(registry: ModelRegistry) -> set[UUID]:
    """The models the log holds (not the metric definitions it holds too)."""
    ids: set[UUID] = set()
    after, created = 0, get_topic(AIModel.ModelCreated)
    while page := read_page(EventLog.of(registry), after, 1000):
        ids.update(UUID(str(n.originator_id)) for n in page if n.topic == created)
        after = page[-1].id
    return ids


def history_of(registry: ModelRegistry, model_id: UUID) -> list[tuple[int, AIModel.Event]]:
    return [
        (position, cast(AIModel.Event, registry.mapper.to_domain_event(stored)))
        for position, stored in registry.store.select_history(model_id)
    ]


def expected_stretches(events: list[tuple[int, AIModel.Event]]) -> list[dict[str, Any]]:
    """Every stretch of time a version served an environment, straight from the events."""
    serving: dict[str, dict[str, Any]] = {}
    stretches: list[dict[str, Any]] = []
    for position, event in events:
        if not isinstance(
            event, AIModel.ModelDeployed | AIModel.ModelRolledBack | AIModel.ModelUndeployed
        ):
            continue
        kind = {
            AIModel.ModelDeployed: "deployed",
            AIModel.ModelRolledBack: "rolled_back",
            AIModel.ModelUndeployed: "undeployed",
        }[type(event)]
        ended = serving.pop(event.environment, None)
        if ended is not None:
            ended.update(to_position=position, to_time=event.when, ended_by=kind)
        if not isinstance(event, AIModel.ModelUndeployed):
            serving[event.environment] = stretch = {
                "environment": event.environment,
                "model_version": event.model_version,
                "endpoint_url": event.endpoint_url,
                "action": kind,
                "deployed_by": event.actor,
                "from_position": position,
                "from_time": event.when,
                "to_position": None,
                "to_time": None,
                "ended_by": None,
            }
            stretches.append(stretch)
    return sorted(stretches, key=lambda s: (s["environment"], s["from_position"]))


def best_of(model: AIModel, directions: Directions) -> dict[str, dict[str, Any]]:
    """Each metric's best value over the model's versions, and the first version with it."""
    best: dict[str, dict[str, Any]] = {}
    for version in model.versions:
        for name, value in version.metrics.items():
            better = min if directions.minimises(name) else max
            held = best.get(name)
            if held is None or (value != held["value"] and better(value, held["value"]) == value):
                best[name] = {"value": value, "model_version": version.number}
    return dict(sorted(best.items()))


def groups_of(model: AIModel) -> tuple[tuple[str, str], ...]:
    return (
        (model.project, model.task),
        (model.project, ALL),
        (ALL, model.task),
        (ALL, ALL),
    )


@dataclass
class ExpectedStatistics:
    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    metrics: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)

    def add(self, model: AIModel) -> None:
        for project, task in groups_of(model):
            contributions = [
                ("status", str(model.status)),
                ("task", model.task),
                ("framework", model.framework),
            ]
            for run in model.training_runs.values():
                contributions.append(("runs", "started"))
                if run.state != "running":
                    contributions.append(("runs", run.state))
            contributions += [("deployments", env) for env in model.deployments]
            for dimension, key in contributions:
                self.counts[(project, task, dimension, key)] += 1
            for version in model.versions:
                for name, value in version.metrics.items():
                    m = self.metrics.setdefault(
                        (project, task, name),
                        {"count": 0, "total": 0.0, "min_value": math.inf, "max_value": -math.inf},
                    )
                    m["count"] += 1
                    m["total"] += value
                    m["min_value"] = min(m["min_value"], value)
                    m["max_value"] = max(m["max_value"], value)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def assert_read_model_matches_the_log(ledger: Ledger) -> int:
    """Every projection, as it stands now (at the head), equals a direct fold of the log:
    the catalogue row of each model is the folded model's resource, its versions and
    deployments are the folded ones, and the statistics counters are the counts of the
    folded models, at every roll-up level. Returns how many models were checked."""
    registry = ledger.registry
    ids = logged_model_ids(registry)
    stats = ExpectedStatistics()
    directions = declared_directions(registry)
    with ledger.read_engine.connect() as conn:
        states = read_states(conn)
        at = {name: Snapshot(conn, s.generation, s.position) for name, s in states.items()}
        catalogue = catalogue_tables(states["catalogue"].generation, conn.dialect.name)
        # the catalogue's definitions are those the log holds
        stored = directions_now(conn, states["catalogue"].generation)
        assert stored.declared == directions.declared
        stored_ids = set(conn.execute(select(catalogue.models.c.id)).scalars())
        assert stored_ids == {str(i) for i in ids}, "the catalogue holds exactly the logged models"
        expected_tags: set[tuple[str, str]] = set()
        expected_metric_rows: dict[tuple[str, str], dict[str, Any]] = {}
        for model_id in sorted(ids):
            model, position = get_model(EventLog.of(registry), model_id)
            events = history_of(registry, model_id)
            row = model_row(at["catalogue"], model_id)
            # the catalogue row is the folded model, ranked by the definitions in force
            assert catalogue_view(row, directions) == model_view(model, directions), model_id
            assert row.position == position
            assert directions.best(row.metric_extremes) == best_of(model, directions)
            assert row.archived == model.archived
            # its versions, with who trained them and where in the log
            trained = {
                e.model_version: (p, e.actor)
                for p, e in events
                if isinstance(e, AIModel.ModelTrained)
            }
            assert model_versions(at["versions"], model_id) == [
                {**asdict(v), "created_by": trained[v.number][1], "position": trained[v.number][0]}
                for v in model.versions
            ]
            # what each environment serves now, and every stretch before
            deployments = model_deployments(at["deployments"], model_id)
            assert {
                env: (d["model_version"], d["endpoint_url"], d["from_time"])
                for env, d in deployments["current"].items()
            } == {
                env: (d.model_version, d.endpoint_url, d.deployed_at)
                for env, d in model.deployments.items()
            }
            assert deployments["history"] == expected_stretches(events)
            stats.add(model)
            expected_tags |= {(tag, str(model_id)) for tag in model.tags}
            for name, m in _metric_extremes(model).items():
                expected_metric_rows[(str(model_id), name)] = {
                    **m,
                    "project": model.project,
                    "task": model.task,
                    "archived": model.archived,
                }
        generation = states["catalogue"].generation
        _assert_tags_and_metrics(conn, generation, expected_tags, expected_metric_rows)
        _assert_statistics(conn, generation, stats)
        _assert_statistics_query(at["catalogue"], stats, directions)
    return len(ids)


def _metric_extremes(model: AIModel) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for version in model.versions:
        for name, value in version.metrics.items():
            m = out.get(name)
            if m is None:
                out[name] = {
                    "count": 1,
                    "total": value,
                    "min_value": value,
                    "min_version": version.number,
                    "max_value": value,
                    "max_version": version.number,
                }
                continue
            m["count"] += 1
            m["total"] += value
            if value < m["min_value"]:
                m["min_value"], m["min_version"] = value, version.number
            if value > m["max_value"]:
                m["max_value"], m["max_version"] = value, version.number
    return out


def _assert_tags_and_metrics(
    conn: Connection,
    generation: int,
    expected_tags: set[tuple[str, str]],
    expected_metrics: dict[tuple[str, str], dict[str, Any]],
) -> None:
    t = catalogue_tables(generation, conn.dialect.name)
    tags = {(row.tag, row.model_id) for row in conn.execute(select(t.tags))}
    assert tags == expected_tags
    stored = {
        (row.model_id, row.metric): {
            k: v for k, v in row._mapping.items() if k not in ("model_id", "metric")
        }
        for row in conn.execute(select(t.metrics))
    }
    assert stored.keys() == expected_metrics.keys()
    for key, want in expected_metrics.items():
        got = stored[key]
        assert close(got.pop("total"), want["total"]), key
        assert got == {k: v for k, v in want.items() if k != "total"}, key


def _assert_statistics(conn: Connection, generation: int, stats: ExpectedStatistics) -> None:
    t = catalogue_tables(generation, conn.dialect.name)
    counts = {
        (row.project, row.task, row.dimension, row.key): row._mapping["count"]
        for row in conn.execute(select(t.counts))
        if row._mapping["count"] != 0
    }
    assert counts == dict(stats.counts)
    metric_stats = {
        (row.project, row.task, row.metric): dict(row._mapping)
        for row in conn.execute(select(t.metric_stats))
        if row._mapping["count"] > 0
    }
    assert metric_stats.keys() == stats.metrics.keys()
    for key, want in stats.metrics.items():
        got = metric_stats[key]
        assert got["count"] == want["count"], key
        assert close(got["total"], want["total"]), key
        assert (got["min_value"], got["max_value"]) == (want["min_value"], want["max_value"]), key


def _assert_statistics_query(
    snapshot: Snapshot, stats: ExpectedStatistics, directions: Directions
) -> None:
    """And GET /statistics (every project, every task) says the same."""
    answer = model_statistics(snapshot, ModelStatistics())

    def dimension(name: str) -> dict[str, int]:
        return {k: n for (p, t, d, k), n in stats.counts.items() if (p, t, d) == (ALL, ALL, name)}

    assert answer["by_status"] == dimension("status")
    assert answer["total_models"] == sum(dimension("status").values())
    assert answer["by_task"] == dimension("task")
    assert answer["by_framework"] == dimension("framework")
    assert answer["active_deployments"] == dimension("deployments")
    runs = dimension("runs")
    assert answer["training_runs"] == {
        k: runs.get(k, 0) for k in ("started", "completed", "failed")
    }
    everywhere = {m: s for (p, t, m), s in stats.metrics.items() if (p, t) == (ALL, ALL)}
    assert answer["metrics"].keys() == everywhere.keys()
    for name, want in everywhere.items():
        got = answer["metrics"][name]
        assert got["count"] == want["count"]
        lowest = directions.minimises(name)
        assert got["best"] == want["min_value" if lowest else "max_value"], name
        assert close(got["mean"] * got["count"], want["total"])
        assert (got["min"], got["max"]) == (want["min_value"], want["max_value"])
