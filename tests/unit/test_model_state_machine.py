"""Random command stories against a few models, checked against a naive model of the rules.

The machine sends every command through ``commands.handlers.handle_sync`` on an in-memory
ledger. Before each command it asks ``Expected`` (a plain restatement of the rules,
written without the aggregate's code) whether the command must be refused and with
which error; after every step it checks the ledger's invariants, and that replaying
the stored events gives back exactly the aggregate the handler saved.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, cast
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from pydantic import ValidationError

from commands.errors import CommandError, IdempotencyKeyReused, VersionMismatch
from commands.handlers import handle_sync as handle
from commands.idempotency import fingerprint
from commands.messages import (
    ArchiveModel,
    Command,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
    UpdateModel,
)
from commands.registry import CommandContext, CommandResult, IdempotencyRequest
from tests.support.ledgers import make_ledger
from write_model.errors import (
    DomainError,
    DuplicateModelName,
    InvalidValue,
    ModelArchived,
    ModelNotFound,
    ModelStillDeployed,
    NotDeployed,
    NothingToRollBack,
    NoTrainedVersion,
    TrainingRunFinished,
    TrainingRunNotFound,
    UnknownModelVersion,
)
from write_model.model import AIModel
from write_model.values import ModelStatus, model_id_for

PROJECT = "default"
ACTOR = "tester"
NEVER_STARTED = "run-that-never-started"
METADATA = ("description", "task", "framework", "tags", "configuration", "owner")
NAMES = ("alpha", "beta", "gamma", "delta")  # all but delta are registered from the start

Refusal = type[DomainError] | type[VersionMismatch] | None
Place = tuple[str, str]  # (model name, environment)

# -- what the commands are made of ------------------------------------------------------

names = st.sampled_from(("alpha", "beta", "gamma") * 3 + ("delta",))
rarely_alpha = st.sampled_from(("beta", "gamma", "delta") * 2 + ("alpha",))  # alpha is trained
if_match = st.sampled_from(("absent",) * 6 + ("current",) * 2 + ("stale", "ahead"))
keyed = st.booleans()
REASONS = st.text(max_size=10).filter(str.isprintable)
environments = st.sampled_from(("staging", "Production"))  # compared lower-case
identifiers = st.sampled_from(("classification", "Regression", "nlp", "pytorch", "JAX"))
tags = st.lists(st.sampled_from(("a", "b", "prod", " spaced ")), max_size=4)
json_objects = st.dictionaries(
    st.sampled_from(("lr", "epochs", "seed", "layers")),
    st.integers(-100, 100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
    | st.lists(st.integers(0, 9), max_size=3),
    max_size=3,
)
finite_metrics = st.dictionaries(
    st.sampled_from(("accuracy", "loss", "f1", "val_loss")),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6),
    max_size=3,
)
non_finite = st.sampled_from((math.nan, math.inf, -math.inf))
metadata_changes = st.fixed_dictionaries(
    {},
    optional={
        "description": st.sampled_from(("", "first", "second")),
        "task": identifiers,
        "framework": identifiers,
        "tags": tags,
        "configuration": json_objects,
        "owner": st.sampled_from(("ada", " grace ", "linus")),
    },
)


def model_id(name: str) -> UUID:
    return model_id_for(PROJECT, name)


def normalized(field: str, value: Any) -> Any:
    """What the command messages make of a field: identifiers lower-case, tags unique."""
    if field in ("task", "framework"):
        return str(value).strip().lower()
    if field == "owner":
        return str(value).strip()
    if field == "tags":
        return list(dict.fromkeys(tag.strip() for tag in value))
    return value


# -- the naive model --------------------------------------------------------------------


@dataclasses.dataclass
class Expected:
    """One model as the rules describe it, kept by hand from the accepted commands."""

    metadata: dict[str, Any]
    version: int = 1
    runs: dict[str, str] = dataclasses.field(default_factory=dict)  # running|completed|failed
    last_outcome: str | None = None  # how the most recently finished run ended
    versions: list[tuple[str, dict[str, float]]] = dataclasses.field(default_factory=list)
    served: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # env -> stack
    archived: bool = False

    def status(self) -> ModelStatus:
        """Archived beats deployed beats training; then the last finished run decides."""
        if self.archived:
            return ModelStatus.ARCHIVED
        if self.served:
            return ModelStatus.DEPLOYED
        if "running" in self.runs.values():
            return ModelStatus.TRAINING
        if self.last_outcome == "failed":
            return ModelStatus.FAILED
        return ModelStatus.TRAINED if self.versions else ModelStatus.CREATED

    def refusal(self) -> Refusal:
        return ModelArchived if self.archived else None

    def refusal_to_finish(self, run_id: str) -> Refusal:
        if self.archived:
            return ModelArchived
        if run_id not in self.runs:
            return TrainingRunNotFound
        return TrainingRunFinished if self.runs[run_id] != "running" else None

    def refusal_to_deploy(self, version: int | None) -> Refusal:
        if self.archived:
            return ModelArchived
        if not self.versions:
            return NoTrainedVersion
        if version is not None and version > len(self.versions):
            return UnknownModelVersion
        return None

    def refusal_to_undeploy(self, environment: str) -> Refusal:
        if self.archived:
            return ModelArchived
        return NotDeployed if environment not in self.served else None

    def refusal_to_roll_back(self, environment: str) -> Refusal:
        if refusal := self.refusal_to_undeploy(environment):
            return refusal
        return NothingToRollBack if len(self.served[environment]) < 2 else None

    def refusal_to_archive(self) -> Refusal:
        if self.archived:
            return ModelArchived
        return ModelStillDeployed if self.served else None


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run of one model (or one that never started)."""

    name: str
    run_id: str


@dataclasses.dataclass(frozen=True)
class Sent:
    """A keyed command that was accepted: retrying it must change nothing."""

    command: Command
    ctx: CommandContext
    result: CommandResult


def state_of(model: AIModel) -> dict[str, Any]:
    """Everything a reader of the aggregate can see, as plain data."""
    return {
        "id": model.id,
        "version": model.version,
        "created_on": model.created_on,
        "modified_on": model.modified_on,
        "name": model.name,
        "project": model.project,
        "created_by": model.created_by,
        **{field: getattr(model, field) for field in METADATA},
        "status": model.status,
        "archived": model.archived,
        "training_runs": {key: dataclasses.asdict(run) for key, run in model.training_runs.items()},
        "last_finished_run": model.last_finished_run,
        "versions": [dataclasses.asdict(version) for version in model.versions],
        "deployments": {env: dataclasses.asdict(d) for env, d in model.deployments.items()},
    }


# -- the machine ------------------------------------------------------------------------


class ModelLedgerMachine(RuleBasedStateMachine):
    runs = Bundle[Run]("runs")
    trained = Bundle[str]("trained")  # models that had a version trained
    deployed = Bundle[Place]("deployed")  # places that were deployed to once
    any_run = runs | st.builds(Run, names, st.just(NEVER_STARTED))
    deployable = trained | st.just("alpha") | names
    any_place = deployed | deployed | deployed | st.tuples(names, environments)

    def __init__(self) -> None:
        super().__init__()
        self.ledger = make_ledger("memory://")
        self.registry = self.ledger.registry
        self.expected: dict[str, Expected] = {}
        self.saved: dict[UUID, AIModel] = {}  # each aggregate exactly as a handler saved it
        self.sent: list[Sent] = []
        self.keys = itertools.count(1)
        self._keep_what_handlers_save()

    def teardown(self) -> None:
        self.ledger.close()

    def _keep_what_handlers_save(self) -> None:
        commit = self.registry.commit_async

        async def commit_and_keep(model: AIModel, ctx: CommandContext, **details: Any) -> Any:
            result = await commit(model, ctx, **details)
            self.saved[model.id] = model
            return result

        self.registry.commit_async = commit_and_keep  # type: ignore[method-assign,assignment]

    # -- sending commands -------------------------------------------------------------

    def history_length(self, name: str) -> int:
        return len(self.registry.store.select_history(model_id(name)))

    def load(self, name: str) -> AIModel:
        return cast(AIModel, self.registry.repository.get(model_id(name)))

    def context(self, command: Command, version: int | None, keyed: bool) -> CommandContext:
        key = None
        if keyed:
            body = command.model_dump(mode="json")
            request = fingerprint("POST", f"/models/{type(command).__name__}", body, "tester")
            key = IdempotencyRequest(f"key-{next(self.keys)}", request)
        return CommandContext(actor=ACTOR, expected_version=version, idempotency=key)

    def send(
        self, name: str, command: Command, ctx: CommandContext, refusal: Refusal, appends: int
    ) -> CommandResult | None:
        """Refused: exactly that error, nothing appended. Accepted: `appends` events."""
        before = self.history_length(name)
        if refusal is not None:
            with pytest.raises((DomainError, CommandError)) as refused:
                handle(self.registry, command, ctx)
            assert refused.type is refusal, f"{command!r}: {refused.value!r}, not {refusal}"
            assert self.history_length(name) == before
            return None
        result = handle(self.registry, command, ctx)
        assert not result.replayed
        assert self.history_length(name) == before + appends
        assert result.version == before + appends
        if ctx.idempotency is not None:  # even a no-op: a late retry must not re-run it
            self.sent.append(Sent(command, ctx, result))
        return result

    def attempt(
        self,
        name: str,
        command: Command,
        refusal: Refusal,
        if_match: str,
        keyed: bool,
        appends: int = 1,
    ) -> CommandResult | None:
        """A command to a model: not found first, then If-Match, then the model's rules."""
        model = self.expected.get(name)
        current = model.version if model else 1
        version = {"absent": None, "current": current, "stale": current - 1, "ahead": current + 1}[
            if_match
        ]
        if model is None:
            refusal = ModelNotFound
        elif version not in (None, model.version):
            refusal = VersionMismatch
        result = self.send(name, command, self.context(command, version, keyed), refusal, appends)
        if result is not None and model is not None:
            model.version += appends
        return result

    def deploy_to(
        self, name: str, environment: str, version: int | None, if_match: str, keyed: bool
    ) -> MultipleResults[Place]:
        model = self.expected.get(name)
        command = DeployModel(
            model_id=model_id(name),
            environment=environment,
            model_version=version,
            endpoint_url=f"https://{environment}/",
        )
        refusal = model.refusal_to_deploy(version) if model else None
        stack = model.served.get(environment.lower(), []) if model else []
        served = (version or len(model.versions)) if model else None  # none given: the latest
        # Deploying what is served already (same endpoint here) records nothing.
        appends = 0 if refusal is None and stack and stack[-1] == served else 1
        result = self.attempt(name, command, refusal, if_match, keyed, appends)
        if not (result and model):
            return multiple()
        assert served is not None and result.details["model_version"] == served
        stack = model.served.setdefault(environment.lower(), [])
        if not stack or stack[-1] != served:  # redeploying what is served keeps the history
            stack.append(served)
        return multiple((name, environment))

    # -- rules: one command each --------------------------------------------------------

    @initialize(
        target=deployed,
        task=identifiers,
        framework=identifiers,
        tags=tags,
        versions=st.integers(0, 3),
    )
    def three_models_are_registered_and_alpha_trained_and_deployed(
        self, task: str, framework: str, tags: list[str], versions: int
    ) -> MultipleResults[Place]:
        """A head start, so that the deeper stories (redeploy, roll back) come up often."""
        for name in ("alpha", "beta", "gamma"):
            self.create(name, task, framework, tags, keyed=name == "beta")
        for _ in range(versions):
            self.train("alpha", "mnist", {}, "absent", keyed=False)
            run_id = list(self.expected["alpha"].runs)[-1]
            self.complete_training(Run("alpha", run_id), {"accuracy": 0.5}, "absent", False)
        return self.deploy_to("alpha", "staging", 1, "absent", False) if versions else multiple()

    @rule(
        name=st.sampled_from(NAMES), task=identifiers, framework=identifiers, tags=tags, keyed=keyed
    )
    def create(self, name: str, task: str, framework: str, tags: list[str], keyed: bool) -> None:
        command = CreateModel(name=name, project=PROJECT, task=task, framework=framework, tags=tags)
        refusal = DuplicateModelName if name in self.expected else None  # archived or not
        if self.send(name, command, self.context(command, None, keyed), refusal, appends=1):
            self.expected[name] = Expected(
                metadata={
                    "description": "",
                    "task": normalized("task", task),
                    "configuration": {},
                    "framework": normalized("framework", framework),
                    "owner": ACTOR,
                    "tags": normalized("tags", tags),
                }
            )

    @rule(name=names, changes=metadata_changes, if_match=if_match, keyed=keyed)
    def update(self, name: str, changes: dict[str, Any], if_match: str, keyed: bool) -> None:
        model = self.expected.get(name)
        wanted = {field: normalized(field, value) for field, value in changes.items()}
        effective = {f: v for f, v in wanted.items() if model and model.metadata[f] != v}
        command = UpdateModel(model_id=model_id(name), **changes)
        refusal = model.refusal() if model else None
        appends = 1 if effective else 0  # changing nothing records nothing
        if self.attempt(name, command, refusal, if_match, keyed, appends) and model:
            model.metadata.update(effective)

    @rule(
        target=runs,
        name=names,
        dataset=st.sampled_from(("mnist", "imagenet")),
        hyperparameters=json_objects,
        if_match=if_match,
        keyed=keyed,
    )
    def train(
        self, name: str, dataset: str, hyperparameters: dict[str, Any], if_match: str, keyed: bool
    ) -> MultipleResults[Run]:
        model = self.expected.get(name)
        command = TrainModel(
            model_id=model_id(name), dataset=dataset, hyperparameters=hyperparameters
        )
        result = self.attempt(name, command, model.refusal() if model else None, if_match, keyed)
        if not (result and model):
            return multiple()
        run_id = result.details["run_id"]
        assert run_id not in model.runs
        model.runs[run_id] = "running"
        return multiple(Run(name, run_id))

    @rule(target=trained, run=any_run, metrics=finite_metrics, if_match=if_match, keyed=keyed)
    def complete_training(
        self, run: Run, metrics: dict[str, float], if_match: str, keyed: bool
    ) -> MultipleResults[str]:
        model = self.expected.get(run.name)
        command = CompleteTraining(
            model_id=model_id(run.name),
            run_id=run.run_id,
            metrics=metrics,
            artifact_uri="s3://bucket/model",
        )
        refusal = model.refusal_to_finish(run.run_id) if model else None
        result = self.attempt(run.name, command, refusal, if_match, keyed)
        if not (result and model):
            return multiple()
        assert result.details["model_version"] == len(model.versions) + 1
        model.versions.append((run.run_id, {key: float(v) for key, v in metrics.items()}))
        model.runs[run.run_id] = model.last_outcome = "completed"
        return multiple(run.name)

    @rule(run=any_run, metrics=finite_metrics, bad=non_finite, if_match=if_match, keyed=keyed)
    def complete_training_with_a_non_finite_metric(
        self, run: Run, metrics: dict[str, float], bad: float, if_match: str, keyed: bool
    ) -> None:
        model, spoiled = self.expected.get(run.name), {**metrics, "loss": bad}
        with pytest.raises(ValidationError):  # the message refuses it at the edge...
            CompleteTraining(model_id=model_id(run.name), run_id=run.run_id, metrics=spoiled)
        command = CompleteTraining.model_construct(  # ...and so must the model itself
            model_id=model_id(run.name), run_id=run.run_id, metrics=spoiled
        )
        refusal = (model.refusal_to_finish(run.run_id) or InvalidValue) if model else None
        assert self.attempt(run.name, command, refusal, if_match, keyed) is None

    @rule(run=any_run, if_match=if_match, keyed=keyed)
    def fail_training(self, run: Run, if_match: str, keyed: bool) -> None:
        model = self.expected.get(run.name)
        command = FailTraining(
            model_id=model_id(run.name), run_id=run.run_id, reason="out of memory"
        )
        refusal = model.refusal_to_finish(run.run_id) if model else None
        if self.attempt(run.name, command, refusal, if_match, keyed) and model:
            model.runs[run.run_id] = model.last_outcome = "failed"

    @rule(
        target=deployed,
        name=deployable,
        environment=environments,
        version=st.none() | st.integers(1, 4),
        if_match=if_match,
        keyed=keyed,
    )
    def deploy(
        self, name: str, environment: str, version: int | None, if_match: str, keyed: bool
    ) -> MultipleResults[Place]:
        return self.deploy_to(name, environment, version, if_match, keyed)

    @rule(
        target=deployed, place=deployed, version=st.integers(1, 4), if_match=if_match, keyed=keyed
    )
    def deploy_another_version_there(
        self, place: Place, version: int, if_match: str, keyed: bool
    ) -> MultipleResults[Place]:
        return self.deploy_to(*place, version, if_match, keyed)

    @rule(place=any_place, if_match=if_match, keyed=keyed)
    def undeploy(self, place: Place, if_match: str, keyed: bool) -> None:
        (name, environment), model = place, self.expected.get(place[0])
        command = UndeployModel(model_id=model_id(name), environment=environment)
        refusal = model.refusal_to_undeploy(environment.lower()) if model else None
        if self.attempt(name, command, refusal, if_match, keyed) and model:
            del model.served[environment.lower()]

    @rule(place=any_place, if_match=if_match, keyed=keyed)
    def roll_back(self, place: Place, if_match: str, keyed: bool) -> None:
        (name, environment), model = place, self.expected.get(place[0])
        command = RollBackDeployment(model_id=model_id(name), environment=environment)
        refusal = model.refusal_to_roll_back(environment.lower()) if model else None
        result = self.attempt(name, command, refusal, if_match, keyed)
        if result and model:
            stack = model.served[environment.lower()]
            stack.pop()
            assert result.details["model_version"] == stack[-1]

    # A reason is text without control characters (ArchiveModel refuses those, as a body field).
    @rule(name=rarely_alpha, reason=REASONS, if_match=if_match, keyed=keyed)
    def archive(self, name: str, reason: str, if_match: str, keyed: bool) -> None:
        model = self.expected.get(name)
        command = ArchiveModel(model_id=model_id(name), reason=reason)
        refusal = model.refusal_to_archive() if model else None
        running = [run for run, state in model.runs.items() if state == "running"] if model else []
        # Runs still running end as failed ("model archived") before the archive itself.
        if self.attempt(name, command, refusal, if_match, keyed, 1 + len(running)) and model:
            model.archived = True
            for run in running:
                model.runs[run] = "failed"
                model.last_outcome = "failed"

    # -- rules: retries -------------------------------------------------------------------

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def retry_a_keyed_command(self, data: st.DataObject) -> None:
        """Even after other commands, or once archived: the first answer, nothing appended."""
        first = data.draw(st.sampled_from(self.sent))
        before = self.registry.recorder.max_notification_id()
        again = handle(self.registry, first.command, first.ctx)
        assert again.replayed
        assert again.body() == first.result.body()
        assert self.registry.recorder.max_notification_id() == before

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def reuse_a_key_for_another_request(self, data: st.DataObject) -> None:
        first = data.draw(st.sampled_from(self.sent))
        assert first.ctx.idempotency is not None
        other = IdempotencyRequest(first.ctx.idempotency.key, "fingerprint of another request")
        before = self.registry.recorder.max_notification_id()
        with pytest.raises(IdempotencyKeyReused):
            handle(self.registry, first.command, dataclasses.replace(first.ctx, idempotency=other))
        assert self.registry.recorder.max_notification_id() == before

    # -- invariants, after every step -----------------------------------------------------

    @invariant()
    def the_stored_state_is_what_the_rules_predict(self) -> None:
        for name, model in self.expected.items():
            aggregate = self.load(name)
            assert aggregate.version == model.version == self.history_length(name)
            assert aggregate.status == model.status()
            assert aggregate.archived == model.archived
            assert {field: getattr(aggregate, field) for field in METADATA} == model.metadata
            runs = {run_id: run.state for run_id, run in aggregate.training_runs.items()}
            assert runs == model.runs
            assert [(v.run_id, v.metrics) for v in aggregate.versions] == model.versions
            served = {
                env: [*d.previous_versions, d.model_version]
                for env, d in aggregate.deployments.items()
            }
            assert served == model.served

    @invariant()
    def versions_are_contiguous_trained_and_finite(self) -> None:
        for name in self.expected:
            aggregate = self.load(name)
            numbers = [version.number for version in aggregate.versions]
            assert numbers == list(range(1, len(numbers) + 1))
            for version in aggregate.versions:
                run = aggregate.training_runs[version.run_id]
                assert (run.state, run.model_version) == ("completed", version.number)
                assert all(math.isfinite(value) for value in version.metrics.values())
            for deployment in aggregate.deployments.values():
                for served in (*deployment.previous_versions, deployment.model_version):
                    assert 1 <= served <= len(numbers)

    @invariant()
    def the_history_never_breaks_a_rule(self) -> None:
        """Read the events themselves: each run ends once, only trained versions served."""
        for name in self.expected:
            events = list(self.registry.events.get(model_id(name)))
            assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
            trained, ended = 0, set()
            for event in events:
                if isinstance(event, AIModel.ModelTrained | AIModel.TrainingFailed):
                    assert event.run_id not in ended
                    ended.add(event.run_id)
                if isinstance(event, AIModel.ModelTrained):
                    trained += 1
                    assert event.model_version == trained
                    assert all(math.isfinite(value) for value in event.metrics.values())
                if isinstance(event, AIModel.ModelDeployed | AIModel.ModelRolledBack):
                    assert 1 <= event.model_version <= trained
                if isinstance(event, AIModel.ModelArchived):
                    assert event is events[-1]  # nothing is accepted after the archive

    @invariant()
    def replaying_the_events_gives_the_saved_aggregate_back(self) -> None:
        for name in self.expected:
            replayed = project_aggregate(None, self.registry.events.get(model_id(name)))
            fresh = state_of(cast(AIModel, replayed))
            assert fresh == state_of(self.saved[model_id(name)])  # as the handler left it
            assert fresh == state_of(self.load(name))  # as the aggregate cache has it


ModelLedgerMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# 150 random command sequences take a minute: in `make test`, not in `make test-fast`.
TestModelLedgerStateMachine = pytest.mark.slow(ModelLedgerMachine.TestCase)


# -- regressions: bugs found next to the machine -----------------------------------------


@pytest.mark.parametrize(
    "shaped_like_a_transcoding",
    [
        {"_type_": "uuid_hex", "_data_": "6f1c1f555f0e4c589c550e4a1c7d2b10"},
        {"_type_": "no-such-type", "_data_": 1},
    ],
)
def test_a_json_object_shaped_like_a_transcoded_value_is_refused_at_the_edge(
    shaped_like_a_transcoding: dict[str, Any],
) -> None:
    """The store's transcoder would read it back as another type, so it never gets in."""
    with pytest.raises(ValidationError):
        CreateModel(
            name="m", task="t", framework="f", configuration={"x": shaped_like_a_transcoding}
        )
    with pytest.raises(ValidationError):
        CompleteTraining(model_id=model_id("m"), run_id="r", metrics={"_type_": 1.0, "_data_": 2.0})


def test_a_late_retry_of_a_keyed_update_that_changed_nothing_appends_nothing() -> None:
    ledger = make_ledger("memory://")
    try:
        registry, key = ledger.registry, IdempotencyRequest("k-1", "PATCH description=old")
        handle(
            registry,
            CreateModel(name="m", task="t", framework="f", description="old"),
            CommandContext(),
        )
        first = handle(
            registry,
            UpdateModel(model_id=model_id("m"), description="old"),
            CommandContext(idempotency=key),
        )  # a no-op: nothing appended
        handle(
            registry, UpdateModel(model_id=model_id("m"), description="new"), CommandContext()
        )  # someone else's change
        again = handle(
            registry,
            UpdateModel(model_id=model_id("m"), description="old"),
            CommandContext(idempotency=key),
        )  # the client retries its request
        assert (again.version, again.position) == (first.version, first.position)
        assert len(registry.store.select_history(model_id("m"))) == 2
    finally:
        ledger.close()
