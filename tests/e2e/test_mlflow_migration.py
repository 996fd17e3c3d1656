"""Moving from MLflow, against a real MLflow server (its SQLite backend, installed from
PyPI into a side virtualenv) and both stores: given MLflow's registry (the seed: 20
registered models, 60 versions, 10 aliases, 2 stages, a deleted run, a NaN metric,
unicode names), when `modelledger migrate mlflow` runs, then ModelLedger holds the same
registry, its past reads as MLflow's did, and later runs record only what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.mlflow_rest import MlflowServer
from commands.mlflow_import.run import ImportOptions, Summary, import_registry
from modelledger.bootstrap import Ledger
from tests.support.auth import TEST_ADMIN_KEY, api_client
from tests.support.ledgers import fresh_postgres_database, make_ledger
from tests.support.mlflow_registry import MlflowClientError, MlflowInstance
from tests.support.mlflow_seed import SMALL, SeedModel, SeedVersion, clamp
from tests.support.processes import ApiProcess, ModelLedgerProcess, free_port
from write_model.values import instant, model_id_for

pytestmark = pytest.mark.slow
EXPORT_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow_export"


def migrate(store_url: str, tmp_path: Path, *args: str) -> str:
    """The documented command, as a user runs it; its summary."""
    env = {
        **os.environ,
        "MODELLEDGER_DATABASE_URL": store_url,
        "MODELLEDGER_DATA_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "modelledger", "migrate", "mlflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def api(store_url: str) -> Iterator[tuple[Ledger, TestClient]]:
    ledger = make_ledger(store_url)
    with api_client(ledger) as client:
        yield ledger, client
    ledger.close()


# -- what MLflow's registry should become (said here, apart from the importer's code) --


def project_of(seed: SeedModel) -> str:
    return seed.tags.get("project", "mlflow")


def expected_version(name: str, number: int, seed: SeedVersion) -> dict[str, Any]:
    run = seed.run if seed.run is not None and not seed.run.deleted else None
    metrics = {} if run is None else {k: clamp(v[-1]) for k, v in run.history.items()}
    return {
        "number": number,
        "source_version": seed.number,
        "metrics": {k: v for k, v in metrics.items() if not math.isnan(v)},
        "description": seed.description,
        "tags": sorted(f"{k}={v}" for k, v in seed.tags.items()),
        "artifact_uri": seed.source,
        "output_model": f"models:/{name}/{seed.number}",
    }


def expected_model(seed: SeedModel) -> dict[str, Any]:
    numbers = {v.number: n for n, v in enumerate(seed.versions, start=1)}
    serving = {alias: numbers[v] for alias, v in seed.aliases.items()}
    for version in seed.versions:
        if version.stage in ("Staging", "Production"):
            serving.setdefault(version.stage.lower(), numbers[version.number])
    return {
        "name": seed.name,
        "project": project_of(seed),
        "description": seed.description,
        "task": seed.tags.get("task", "unknown"),
        "framework": seed.tags.get("framework", "unknown"),
        "tags": sorted(
            f"{k}={v}" for k, v in seed.tags.items() if k not in ("project", "task", "framework")
        ),
        "versions": [expected_version(seed.name, numbers[v.number], v) for v in seed.versions],
        "serving": serving,
    }


def held(client: TestClient, seed: SeedModel, **query: Any) -> dict[str, Any]:
    model_id = model_id_for(project_of(seed), seed.name)
    found = client.get(f"/api/v1/models/{model_id}", params=query)
    assert found.status_code == 200, found.text
    body = found.json()
    return {
        "name": body["name"],
        "project": body["project"],
        "description": body["description"],
        "task": body["task"],
        "framework": body["framework"],
        "tags": sorted(body["tags"]),
        "versions": [
            {
                k: v[k]
                for k in (
                    "number",
                    "source_version",
                    "metrics",
                    "description",
                    "artifact_uri",
                    "output_model",
                )
            }
            | {"tags": sorted(v["tags"])}
            for v in body["versions"]
        ],
        "serving": {env: d["model_version"] for env, d in body["deployments"].items()},
    }


# -- the stories --------------------------------------------------------------------


def test_an_import_into_an_empty_store_holds_mlflows_registry_its_past_and_nothing_twice(
    mlflow_seeded: MlflowInstance, store_url: str, tmp_path: Path, api: Any
) -> None:
    summary = migrate(store_url, tmp_path, "--tracking-uri", mlflow_seeded.base_url)

    assert "20 registered models, 60 versions" in summary
    assert "Recorded at MLflow's own times" in summary
    assert "skipped 模型-分类 v2: metric 'f1' is nan" in summary
    assert "skipped fraud detector v2 v1: its run" in summary
    _, client = api
    for seed in mlflow_seeded.seed.models:
        assert held(client, seed) == expected_model(seed), seed.name

    # As of a moment between MLflow's own changes, the registry reads as MLflow's did.
    seed = mlflow_seeded.seed.model("sentiment-bert")
    second, third = seed.versions[1], seed.versions[2]
    assert second.created_ms < third.created_ms
    between = instant(_moment((second.created_ms + third.created_ms) // 2))
    then = held(client, seed, as_of=between)
    assert [v["source_version"] for v in then["versions"]] == [1, 2]
    assert then["serving"] == {}  # aliases have no past in MLflow: recorded at the import
    before = instant(_moment(seed.created_ms - 1))
    assert client.get(f"/api/v1/models/{_id(seed)}", params={"as_of": before}).status_code == 404

    # And the whole catalogue: as of the moment the third model was registered.
    third_model = mlflow_seeded.seed.models[2]
    moment = instant(_moment(third_model.created_ms))
    head = api[0].event_log.head()
    page = client.get(
        "/api/v1/models", params={"as_of": moment, "min_position": head, "limit": 100}
    )
    assert page.status_code == 200, page.text
    names = {item["name"] for item in page.json()["items"]}
    assert names == {
        m.name for m in mlflow_seeded.seed.models if m.created_ms <= third_model.created_ms
    }

    # A second run records nothing.
    again = migrate(store_url, tmp_path, "--tracking-uri", mlflow_seeded.base_url)
    assert api[0].event_log.head() == head
    assert "Recorded at the time of this import" in again
    assert "│ models unchanged        │ 20" in again


def test_a_run_stopped_half_way_resumes_without_doubling(
    mlflow_seeded: MlflowInstance, store_url: str, tmp_path: Path, api: Any
) -> None:
    ledger, client = api

    class CtrlC:
        done, stopped = 0, False

        def read(self, what: str, n: int) -> None: ...

        def planned(self, steps: int) -> None:
            self.stop_at = steps // 2

        def recorded(self, n: int) -> None:
            self.done += n
            if self.done >= self.stop_at and not self.stopped:
                self.stopped = True
                raise KeyboardInterrupt

    source = MlflowServer(mlflow_seeded.base_url)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(
            import_registry(ledger.registry, ledger.event_log, source, ImportOptions(), CtrlC())
        )
    source.close()
    stopped_at = ledger.event_log.head()
    assert stopped_at > 0

    resumed = in_process(ledger, mlflow_seeded.base_url)

    assert not resumed.mlflow_times  # (the store has models now)
    for seed in mlflow_seeded.seed.models:
        assert held(client, seed) == expected_model(seed), seed.name
    created = client.get("/api/v1/events", params={"type": "ModelCreated", "limit": 100})
    trained = client.get("/api/v1/events", params={"type": "ModelTrained", "limit": 100})
    assert (len(created.json()["items"]), len(trained.json()["items"])) == (20, 60)


def test_new_changes_in_mlflow_are_picked_up_by_a_later_run(
    mlflow_seeded: MlflowInstance, postgres_server: str, tmp_path: Path
) -> None:
    # (both stores in one story: MLflow is changed once, between the runs; on the seeded
    # server, with models of this test's own, deleted at the end: the seed stays as it was)
    ours = uuid.uuid4().hex[:8]
    try:
        _changes_story(mlflow_seeded, postgres_server, tmp_path, ours)
    finally:
        for leftover in (f"churn-{ours}", f"retired-{ours}"):
            with contextlib.suppress(MlflowClientError):  # (deleted by the story already)
                mlflow_seeded.client.delete_registered_model(leftover)


def _changes_story(
    mlflow_seeded: MlflowInstance, postgres_server: str, tmp_path: Path, ours: str
) -> None:
    stores = [make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")]
    stores.append(make_ledger(fresh_postgres_database(postgres_server)))
    mlflow = mlflow_seeded.client
    experiment = mlflow.create_experiment(f"changes-{ours}")
    name, gone = f"churn-{ours}", f"retired-{ours}"
    for model in (name, gone):
        mlflow.create_registered_model(model, description="v1 era", tags={"project": "risk"})
        for accuracy in (0.7, 0.8):
            run_id = mlflow.log_run(experiment, "run", {"accuracy": [accuracy]}, {}, None, "ada")
            mlflow.create_model_version(model, f"runs:/{run_id}/model", run_id)
    mlflow.set_registered_model_alias(name, "champion", 1)
    mlflow.set_registered_model_alias(name, "shadow", 2)
    heads = []
    for ledger in stores:
        in_process(ledger, mlflow_seeded.base_url)
        heads.append(ledger.event_log.head())

    run_id = mlflow.log_run(experiment, "v3", {"accuracy": [0.9]}, {"depth": "7"}, "d", "bea")
    mlflow.create_model_version(name, f"runs:/{run_id}/model", run_id, "the best")
    mlflow.set_registered_model_alias(name, "champion", 3)  # moved
    mlflow.delete_registered_model_alias(name, "shadow")  # removed
    mlflow.update_registered_model(name, "v3 era")  # edited
    mlflow.delete_registered_model(gone)  # deleted

    for ledger, head in zip(stores, heads, strict=True):
        third = in_process(ledger, mlflow_seeded.base_url)
        assert dict(+third.done) == {
            "models updated": 1,
            "versions imported": 1,
            "environments deployed": 1,
            "environments undeployed": 1,  # shadow
            "models archived": 1,
        }
        with api_client(ledger) as client:
            changes = client.get("/api/v1/events", params={"after": head, "limit": 100})
            assert [
                (e["type"], e["model_id"] == _id_of("risk", gone)) for e in changes.json()["items"]
            ] == [
                ("ModelUpdated", False),
                ("TrainingStarted", False),
                ("ModelTrained", False),
                ("VersionUpdated", False),
                ("ModelDeployed", False),
                ("ModelUndeployed", False),
                ("ModelArchived", True),
            ]
            churn = client.get(f"/api/v1/models/{_id_of('risk', name)}").json()
            assert churn["description"] == "v3 era"
            assert {e: d["model_version"] for e, d in churn["deployments"].items()} == {
                "champion": 3
            }
            assert churn["versions"][2]["source_version"] == 3
            assert churn["training_runs"][2]["hyperparameters"] == {"depth": "7"}
            retired = client.get(f"/api/v1/models/{_id_of('risk', gone)}").json()
            assert retired["status"] == "archived"
        ledger.close()


def test_an_export_directory_imports_to_the_same_registry_as_the_live_server(
    mlflow_seeded: MlflowInstance, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    summary = migrate(store_url, tmp_path, "--from-export-dir", str(EXPORT_DIR))
    assert f"{len(SMALL.models)} registered models" in summary
    exported = make_ledger(store_url)
    live = make_ledger("memory://")
    in_process(live, mlflow_seeded.base_url)

    with api_client(exported) as client, api_client(live) as live_client:
        for small in SMALL.models:
            seed = mlflow_seeded.seed.model(small.name)
            # (the artifacts' URIs name each seeding's own run ids)
            assert _without_uris(held(client, seed)) == _without_uris(held(live_client, seed))
    live.close()
    exported.close()


def _without_uris(model: dict[str, Any]) -> dict[str, Any]:
    versions = [
        {k: v for k, v in version.items() if k != "artifact_uri"} for version in model["versions"]
    ]
    return model | {"versions": versions}


class _Quiet:
    def read(self, what: str, n: int) -> None: ...

    def planned(self, steps: int) -> None: ...

    def recorded(self, n: int) -> None: ...


def in_process(ledger: Ledger, url: str, watcher: Any = None) -> Summary:
    """An import as the command runs it, in this process (no interpreter to start)."""
    source = MlflowServer(url)
    try:
        coroutine = import_registry(
            ledger.registry, ledger.event_log, source, ImportOptions(), watcher or _Quiet()
        )
        return asyncio.run(coroutine)
    finally:
        source.close()


def _id_of(project: str, name: str) -> str:
    return str(model_id_for(project, name))


def _id(seed: SeedModel) -> str:
    return str(model_id_for(project_of(seed), seed.name))


def _moment(milliseconds: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def test_the_documented_command_migrates_into_the_store_make_run_serves(
    mlflow_seeded: MlflowInstance, tmp_path: Path
) -> None:
    # Given `make run`'s embedded default (a SQLite store under the data directory) serving
    env = {
        "MODELLEDGER_DATA_DIR": str(tmp_path / "var"),
        "MODELLEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
        "MODELLEDGER_PORT": str(port := free_port()),
    }
    server = ApiProcess(["serve"], env, tmp_path, "serve", port, TEST_ADMIN_KEY).start()
    try:
        server.wait_healthy()
        # When the guide's command runs beside it, on the same store
        migrate_cli = ModelLedgerProcess(
            ["migrate", "mlflow", "--tracking-uri", mlflow_seeded.base_url],
            env,
            tmp_path,
            "migrate",
        ).start()
        assert migrate_cli.process is not None
        assert migrate_cli.process.wait(timeout=300) == 0, migrate_cli.output()
        # Then the running server shows MLflow's registry
        with server.client() as client:
            last = client.get("/api/v1/events", params={"after": 0, "limit": 1000}).json()
            head = last["items"][-1]["position"]
            found = client.get("/api/v1/models", params={"limit": 100, "min_position": head})
            assert found.status_code == 200, found.text
            assert {m["name"] for m in found.json()["items"]} == {
                m.name for m in mlflow_seeded.seed.models
            }
    finally:
        server.stop()
