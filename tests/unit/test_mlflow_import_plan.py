"""What an MLflow registry becomes, and what a later import records: given a registry
(the port's values, in memory), when it is imported into an in-memory store, then
these models, versions and environments; and on a second run, only what changed.

The real MLflow server, both stores and the export directory are in
tests/e2e/test_mlflow_migration.py; these stories pin the rules, fast.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from commands.mlflow_import.run import ImportOptions, Summary, import_registry
from commands.ports import MlflowModel, MlflowRun, MlflowVersion
from modelledger.bootstrap import Ledger
from queries.models import get_model, model_history
from tests.support.ledgers import make_ledger
from write_model.values import model_id_for

T0 = 1_700_000_000_000  # MLflow's milliseconds


def run(run_id: str, deleted: bool = False, **metrics: float) -> MlflowRun:
    return MlflowRun(run_id, deleted, metrics, {"lr": "0.1"}, "iris", "ada")


def version(n: int, run_: MlflowRun | None, stage: str = "None", **more: Any) -> MlflowVersion:
    fields: dict[str, Any] = {
        "version": n,
        "created_ms": T0 + n * 60_000,
        "updated_ms": T0 + n * 60_000,
        "description": f"version {n}",
        "tags": {"reviewed": "yes"},
        "source": f"s3://bucket/{n}",
        "run_id": run_.run_id if run_ else "",
        "user_id": "ada",
        "stage": stage,
        "status": "READY",
        "run": run_,
    }
    return MlflowVersion(**(fields | more))


def registered(name: str, *versions: MlflowVersion, **more: Any) -> MlflowModel:
    fields: dict[str, Any] = {
        "name": name,
        "created_ms": T0,
        "updated_ms": T0,
        "description": "catches fraud",
        "tags": {"task": "Classification", "framework": "sklearn", "team": "risk", "gpu": ""},
        "aliases": {},
        "versions": versions,
    }
    return MlflowModel(**(fields | more))


@dataclasses.dataclass
class InMemoryMlflow:
    """The port's values as a registry: what a reader of MLflow would have returned."""

    models: list[MlflowModel]
    where: str = "memory"

    def read(self, tick: Callable[[str, int], None]) -> list[MlflowModel]:
        tick("models", len(self.models))
        return list(self.models)

    def gone(self, names: list[str]) -> set[str]:
        return set(names) - {m.name for m in self.models}


class Quiet:
    def read(self, what: str, n: int) -> None: ...

    def planned(self, steps: int) -> None: ...

    def recorded(self, n: int) -> None: ...


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    built = make_ledger("memory://")
    yield built
    built.close()


def migrate(ledger: Ledger, mlflow: InMemoryMlflow, **options: Any) -> Summary:
    coroutine = import_registry(
        ledger.registry, ledger.event_log, mlflow, ImportOptions(**options), Quiet()
    )
    return asyncio.run(coroutine)


def model(ledger: Ledger, name: str, project: str = "mlflow") -> dict[str, Any]:
    found, _ = get_model(ledger.event_log, model_id_for(project, name))
    return {
        "fields": (found.project, found.task, found.framework, found.tags, found.description),
        "versions": [(v.number, v.source_version, v.metrics) for v in found.versions],
        "serving": {env: d.model_version for env, d in found.deployments.items()},
        "archived": found.archived,
    }


FRAUD = registered(
    "fraud",
    version(1, run("r1", accuracy=0.8)),
    version(3, run("r3", accuracy=0.9, loss=math.nan), stage="Production"),
    version(4, run("r4", deleted=True, accuracy=0.95), stage="Staging"),
    aliases={"Champion": 3, "staging": 1},
)


def test_a_registered_model_becomes_a_model_with_its_versions_metrics_and_environments(
    ledger: Ledger,
) -> None:
    summary = migrate(ledger, InMemoryMlflow([FRAUD]))

    assert model(ledger, "fraud") == {
        "fields": ("mlflow", "classification", "sklearn", ["gpu", "team=risk"], "catches fraud"),
        # numbered 1..N as always, MLflow's number kept; NaN left out; a deleted run's
        # version comes without its run's metrics
        "versions": [(1, 1, {"accuracy": 0.8}), (2, 3, {"accuracy": 0.9}), (3, 4, {})],
        # an alias serves in its own name (lower case); the stage whose environment an
        # alias names gives way to it; Production serves its newest version
        "serving": {"champion": 2, "staging": 1, "production": 2},
        "archived": False,
    }
    assert summary.mlflow_times and summary.done["versions imported"] == 3
    assert {(s.what, s.reason.split(" (")[0]) for s in summary.skipped} == {
        ("fraud v3", "metric 'loss' is nan"),
        ("fraud v4", "its run r4 was deleted: no metrics or parameters"),
    }


def test_the_first_import_into_an_empty_store_records_at_mlflows_times(ledger: Ledger) -> None:
    migrate(ledger, InMemoryMlflow([FRAUD]))

    history = model_history(ledger.event_log, model_id_for("mlflow", "fraud"))
    trained = [e for e in history if e["type"] == "ModelTrained"]
    assert [e["timestamp"][:19] for e in trained] == [
        "2023-11-14T22:14:20",  # T0 + 1 minute: MLflow's creation time of version 1
        "2023-11-14T22:16:20",
        "2023-11-14T22:17:20",
    ]
    assert trained[0]["actor"] == "mlflow-import"
    assert trained[0]["data"]["source"] == {
        "system": "mlflow",
        "kind": "version",
        "id": "fraud/1",
        "time": "2023-11-14T22:14:20.000000+00:00",
        "user_id": "ada",
    }


def test_a_second_import_records_nothing_and_a_third_only_what_changed(ledger: Ledger) -> None:
    other = registered("other", version(1, run("o1", accuracy=0.5)), aliases={"prod": 1})
    migrate(ledger, InMemoryMlflow([FRAUD, other]))
    head = ledger.event_log.head()

    again = migrate(ledger, InMemoryMlflow([FRAUD, other]))
    assert (ledger.event_log.head(), sum(again.done.values()), again.unchanged) == (head, 0, 2)
    assert not again.mlflow_times  # the store has models now: the import's own time

    changed = dataclasses.replace(
        FRAUD,
        description="catches more fraud",
        versions=(*FRAUD.versions, version(5, run("r5", accuracy=0.97))),
        aliases={"Champion": 5},  # moved; "staging" removed
    )
    third = migrate(ledger, InMemoryMlflow([changed]))  # "other" was deleted in MLflow

    assert dict(+third.done) == {
        "models updated": 1,
        "versions imported": 1,
        "environments deployed": 2,  # champion moved; staging now from the Staging stage
        "environments undeployed": 1,  # other's prod, before archiving it
        "models archived": 1,
    }
    fraud = model(ledger, "fraud")
    assert fraud["fields"][4] == "catches more fraud"
    assert fraud["versions"][-1] == (4, 5, {"accuracy": 0.97})
    assert fraud["serving"] == {"champion": 4, "staging": 3, "production": 2}
    assert model(ledger, "other")["archived"] and model(ledger, "other")["serving"] == {}


def test_what_a_user_changed_in_modelledger_stays_until_mlflow_changes_it(ledger: Ledger) -> None:
    from commands.handlers import handle_sync
    from commands.messages import DeployModel, UpdateModel
    from commands.registry import CommandContext

    migrate(ledger, InMemoryMlflow([FRAUD]))
    fraud_id = model_id_for("mlflow", "fraud")
    user = CommandContext(actor="bea")
    handle_sync(ledger.registry, UpdateModel(model_id=fraud_id, description="mine"), user)
    deploy = DeployModel(model_id=fraud_id, environment="champion", model_version=1)
    handle_sync(ledger.registry, deploy, user)

    again = migrate(ledger, InMemoryMlflow([FRAUD]))

    assert sum(again.done.values()) == 0
    assert model(ledger, "fraud")["fields"][4] == "mine"
    assert model(ledger, "fraud")["serving"]["champion"] == 1


def test_a_dry_run_says_what_it_would_record_and_records_nothing(ledger: Ledger) -> None:
    summary = migrate(ledger, InMemoryMlflow([FRAUD]), dry_run=True)

    assert summary.done["models created"] == 1 and summary.done["versions imported"] == 3
    assert ledger.event_log.head() == 0


def test_models_go_into_the_project_asked_for_else_their_tag(ledger: Ledger) -> None:
    tagged = registered("tagged", tags={"project": "risk"})
    bad = registered("bad", tags={"project": "no spaces allowed"})
    migrate(ledger, InMemoryMlflow([tagged, bad, registered("plain")]))
    # (another registry: what the first gave stays, none of it archived)
    migrate(ledger, InMemoryMlflow([registered("forced")], "elsewhere"), project="team-a")

    assert model(ledger, "tagged", "risk")["fields"][0] == "risk"
    assert model(ledger, "bad")["fields"][0] == "mlflow"  # reported, and the default used
    assert model(ledger, "plain")["fields"][0] == "mlflow"
    assert model(ledger, "forced", "team-a")["fields"][0] == "team-a"
    assert (
        not model(ledger, "plain")["archived"] and not model(ledger, "tagged", "risk")["archived"]
    )


def test_a_name_taken_by_a_model_not_from_mlflow_is_skipped_not_taken_over(
    ledger: Ledger,
) -> None:
    from commands.handlers import handle_sync
    from commands.messages import CreateModel
    from commands.registry import CommandContext

    mine = CreateModel(name="fraud", project="mlflow", task="t", framework="f")
    handle_sync(ledger.registry, mine, CommandContext(actor="bea"))

    summary = migrate(ledger, InMemoryMlflow([FRAUD]))

    assert [s.what for s in summary.skipped] == ["fraud"]
    assert "not from MLflow" in summary.skipped[0].reason
    assert model(ledger, "fraud")["versions"] == []


def test_a_version_is_imported_once_even_by_two_imports_at_once(ledger: Ledger) -> None:
    from commands.handlers import handle_sync
    from commands.messages import ImportVersion
    from commands.registry import CommandContext

    migrate(ledger, InMemoryMlflow([FRAUD]))
    fraud_id = model_id_for("mlflow", "fraud")
    # (what a second import, planned before the first recorded MLflow's version 5, sends)
    late = ImportVersion(
        model_id=fraud_id, source="mlflow", dataset="d", metrics={}, source_version=5
    )
    handle_sync(ledger.registry, late, CommandContext(actor="mlflow-import"))
    handle_sync(ledger.registry, late, CommandContext(actor="mlflow-import"))

    assert [v[1] for v in model(ledger, "fraud")["versions"]] == [1, 3, 4, 5]


def test_an_alias_moved_to_what_a_user_deployed_already_records_nothing(ledger: Ledger) -> None:
    from commands.handlers import handle_sync
    from commands.messages import DeployModel
    from commands.registry import CommandContext

    migrate(ledger, InMemoryMlflow([FRAUD]))
    deploy = DeployModel(
        model_id=model_id_for("mlflow", "fraud"), environment="champion", model_version=3
    )
    handle_sync(ledger.registry, deploy, CommandContext(actor="bea"))
    moved = dataclasses.replace(FRAUD, aliases={"Champion": 4, "staging": 1})

    again = migrate(ledger, InMemoryMlflow([moved]))

    assert sum(again.done.values()) == 0 and again.unchanged == 1


def test_what_modelledger_cannot_hold_is_skipped_and_the_rest_imported(ledger: Ledger) -> None:
    spaced = registered("  padded  ", version(1, run("p1", accuracy=0.5)), aliases={"prod": 1})
    summary = migrate(ledger, InMemoryMlflow([registered("x" * 201), spaced, FRAUD]))

    assert [s.what for s in summary.skipped if s.what.startswith("x")] == ["x" * 201]
    assert "name" in next(s.reason for s in summary.skipped if s.what.startswith("x"))
    # (MLflow's name with spaces around: the model's name without them, whole)
    assert model(ledger, "padded")["versions"] == [(1, 1, {"accuracy": 0.5})]
    assert model(ledger, "padded")["serving"] == {"prod": 1}
    assert model(ledger, "fraud")["versions"]


def test_a_model_deleted_in_mlflow_but_deployed_by_a_user_is_not_archived(ledger: Ledger) -> None:
    from commands.handlers import handle_sync
    from commands.messages import DeployModel
    from commands.registry import CommandContext

    migrate(ledger, InMemoryMlflow([FRAUD]))
    deploy = DeployModel(
        model_id=model_id_for("mlflow", "fraud"), environment="canary", model_version=1
    )
    handle_sync(ledger.registry, deploy, CommandContext(actor="bea"))

    summary = migrate(ledger, InMemoryMlflow([]))

    assert sum(summary.done.values()) == 0
    assert [s.what for s in summary.skipped] == ["fraud"] and "not archived" in summary.skipped[
        0
    ].reason
    assert not model(ledger, "fraud")["archived"]
