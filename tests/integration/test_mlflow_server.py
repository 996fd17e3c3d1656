"""The seeded MLflow the import tests start from holds what tests.support.mlflow_seed
says, as MLflow's own REST API shows it: the import tests can trust the seed's data
as the truth about the server."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from tests.support.mlflow_registry import MlflowClientError, MlflowInstance
from tests.support.mlflow_seed import DELETED_RUN, INFINITY, MAX_FLOAT, NAN, SeedRegistry

pytestmark = pytest.mark.slow

API = "/api/2.0/mlflow"


def get(mlflow: MlflowInstance, path: str, **params: Any) -> dict[str, Any]:
    answer = httpx.get(f"{mlflow.base_url}{API}/{path}", params=params, timeout=30)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def all_models(mlflow: MlflowInstance) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = []
    params: dict[str, Any] = {"max_results": 7}  # pages: the seed needs three
    while True:
        page = get(mlflow, "registered-models/search", **params)
        models += page.get("registered_models", [])
        if not page.get("next_page_token"):
            return models
        params["page_token"] = page["next_page_token"]


def versions_of(mlflow: MlflowInstance, name: str) -> list[dict[str, Any]]:
    quoted = name.replace("'", "\\'")
    found = get(mlflow, "model-versions/search", filter=f"name = '{quoted}'")
    return sorted(found.get("model_versions", []), key=lambda v: int(v["version"]))


def run_of(mlflow: MlflowInstance, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = get(mlflow, "runs/get", run_id=run_id)["run"]
    return run


def test_the_registry_holds_the_seeds_models_with_their_descriptions_tags_and_aliases(
    mlflow_seeded: MlflowInstance,
) -> None:
    seed: SeedRegistry = mlflow_seeded.seed
    # when the registered models are listed page by page
    models = {m["name"]: m for m in all_models(mlflow_seeded)}
    # then they are the seed's twenty, unicode names and spaces as written
    assert len(models) == 20 == len(seed.models)
    assert set(models) == {m.name for m in seed.models}
    assert {"模型-分类", "Modèle-ü", "fraud detector v2"} <= set(models)
    for planned in seed.models:
        found = models[planned.name]
        assert found.get("description", "") == planned.description
        assert {t["key"]: t["value"] for t in found.get("tags", [])} == planned.tags
        aliases = {a["alias"]: int(a["version"]) for a in found.get("aliases", [])}
        assert aliases == planned.aliases
        assert int(found["creation_timestamp"]) == planned.created_ms
    # and ten aliases in all
    assert sum(len(m.get("aliases", [])) for m in models.values()) == 10 == seed.alias_count


def test_every_model_has_its_versions_with_gaps_stages_and_a_run_less_one(
    mlflow_seeded: MlflowInstance,
) -> None:
    seed = mlflow_seeded.seed
    # when each model's versions are searched
    found = {m.name: versions_of(mlflow_seeded, m.name) for m in seed.models}
    # then sixty versions, numbered as the seed says (two models with a gap)
    assert sum(len(v) for v in found.values()) == 60 == len(seed.versions)
    for model in seed.models:
        assert [int(v["version"]) for v in found[model.name]] == [v.number for v in model.versions]
        for planned, version in zip(model.versions, found[model.name], strict=True):
            assert version.get("description", "") == planned.description
            assert {t["key"]: t["value"] for t in version.get("tags", [])} == planned.tags
            assert version.get("run_id", "") == planned.run_id
            assert version["current_stage"] == planned.stage
            assert int(version["creation_timestamp"]) == planned.created_ms
    assert [int(v["version"]) for v in found["Modèle-ü"]] == [1, 3]
    assert [int(v["version"]) for v in found["fraud detector v2"]] == [1, 2, 4, 5]
    # and one version in Staging, one in Production, on models with no such alias
    staged = {
        (name, v["current_stage"]): int(v["version"])
        for name, versions in found.items()
        for v in versions
        if v["current_stage"] != "None"
    }
    assert staged == {("Modèle-ü", "Staging"): 1, ("fraud detector v2", "Production"): 2}
    # and one version registered from a path, with no run
    run_less = [(n, v["source"]) for n, vs in found.items() for v in vs if not v.get("run_id")]
    assert run_less == [("churn-predictor", "s3://models-bucket/churn-predictor/1")]


def test_runs_keep_their_latest_metrics_params_datasets_users_and_one_is_deleted(
    mlflow_seeded: MlflowInstance,
) -> None:
    seed = mlflow_seeded.seed
    # when every version's run is read
    for model in seed.models:
        for version in model.versions:
            if version.run is None:
                continue
            run = run_of(mlflow_seeded, version.run_id)
            # then it has its latest metric values, params, dataset and user
            metrics = {m["key"]: float(m["value"]) for m in run["data"].get("metrics", [])}
            assert metrics.keys() == version.run.metrics.keys()
            for key, value in version.run.metrics.items():
                assert metrics[key] == value or (math.isnan(metrics[key]) and math.isnan(value))
            params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
            assert params == version.run.params
            inputs = run.get("inputs", {}).get("dataset_inputs", [])
            assert [i["dataset"]["name"] for i in inputs] == (
                [version.run.dataset] if version.run.dataset else []
            )
            assert run["info"]["user_id"] == version.run.user
            stage = "deleted" if version.run.deleted else "active"
            assert run["info"]["lifecycle_stage"] == stage
    # and the deleted run, the NaN and the (clamped) +Infinity are where the seed says
    deleted = [r for r in seed.runs if r.deleted]
    assert [(r.name, r.user) for r in deleted] == [(f"{DELETED_RUN[0]} v1", deleted[0].user)]
    nan_run = next(v for v in seed.model(NAN[0]).versions if v.number == NAN[1]).run
    assert nan_run is not None and math.isnan(nan_run.metrics[NAN[2]])
    inf_run = next(v for v in seed.model(INFINITY[0]).versions if v.number == INFINITY[1]).run
    assert inf_run is not None and inf_run.metrics[INFINITY[2]] == MAX_FLOAT
    assert len({r.user for r in seed.runs}) == 4


def test_the_client_reports_mlflows_errors_with_mlflows_code(
    mlflow_seeded: MlflowInstance,
) -> None:
    # when a call MLflow refuses is made through the client process
    with pytest.raises(MlflowClientError) as refused:
        mlflow_seeded.client.get_registered_model("no such model")
    # then it comes back as an error with MLflow's code, and the process goes on
    assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow_seeded.client.get_registered_model(mlflow_seeded.seed.models[0].name)
