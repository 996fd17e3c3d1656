"""Reading an MLflow export directory: the committed fixture is what
`mlflow-export-import` 1.2.0's `export-models` wrote for tests.support.mlflow_seed.SMALL
(tests/support/make_mlflow_export.py regenerates it); the reader gives back SMALL, and
says which file is wrong when a directory is not such an export. No server needed."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from adapters.mlflow_export import MlflowExportDirectory
from commands.ports import MlflowModel, ProviderRejected
from tests.support.mlflow_seed import SMALL

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mlflow_export"


def read(where: Path) -> tuple[dict[str, MlflowModel], Counter[str]]:
    ticks: Counter[str] = Counter()
    models = MlflowExportDirectory(str(where)).read(lambda what, n: ticks.update({what: n}))
    return {m.name: m for m in models}, ticks


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_the_committed_export_reads_back_as_the_small_seed() -> None:
    # given the export of SMALL's three models; when it is read
    models, ticks = read(FIXTURE)
    # then it has their names, unicode and spaces as written, and counts what it read
    assert set(models) == {"模型-分类", "Modèle-ü", "fraud detector v2"}
    assert ticks == {"models": 3, "versions": 9, "runs": 9}
    for planned in SMALL.models:
        model = models[planned.name]
        # and each model's description, tags and aliases
        assert (model.description, model.tags) == (planned.description, planned.tags)
        assert model.aliases == planned.aliases
        assert 0 < model.created_ms <= model.updated_ms
        # and its versions in order, with the gaps MLflow left
        assert [v.version for v in model.versions] == [v.number for v in planned.versions]
        for version, want in zip(model.versions, planned.versions, strict=True):
            assert (version.description, version.tags) == (want.description, want.tags)
            assert (version.stage, version.status) == (want.stage, "READY")
            assert 0 < version.created_ms <= version.updated_ms
            assert re.fullmatch("[0-9a-f]{32}", version.run_id)
            assert version.source == f"runs:/{version.run_id}/model"
            # and the run behind it: latest metric values, params, user, deleted or not
            assert version.run is not None and want.run is not None
            assert version.run.run_id == version.run_id
            assert version.run.metrics.keys() == want.run.metrics.keys()
            assert all(same(version.run.metrics[k], v) for k, v in want.run.metrics.items())
            assert version.run.params == want.run.params
            assert (version.run.user_id, version.run.deleted) == (want.run.user, want.run.deleted)
            assert version.run.dataset is None  # 1.2.0 does not export run inputs
    # and the stages, the NaN and the deleted run are among them
    assert models["Modèle-ü"].versions[0].stage == "Staging"
    assert models["fraud detector v2"].versions[1].stage == "Production"
    nan_run = models["模型-分类"].versions[1].run
    assert nan_run is not None and math.isnan(nan_run.metrics["f1"])
    deleted = models["fraud detector v2"].versions[0].run
    assert deleted is not None and deleted.deleted


def test_versions_come_in_version_order_and_times_as_mlflow_kept_them() -> None:
    models, _ = read(FIXTURE)
    for model in models.values():
        numbers = [v.version for v in model.versions]
        assert numbers == sorted(numbers)
        created = [v.created_ms for v in model.versions]
        assert created == sorted(created)
        assert model.created_ms <= created[0]


@pytest.fixture
def export_copy(tmp_path: Path) -> Path:
    """A copy of the fixture to change."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "export"))


def run_file(export: Path, run_id: str) -> Path:
    return next(export.rglob(f"{run_id}/run.json"))


def test_a_run_the_export_lacks_leaves_its_version_without_a_run(export_copy: Path) -> None:
    # given an export from which the run of 模型-分类 v1 is missing
    models, _ = read(export_copy)
    run_id = models["模型-分类"].versions[0].run_id
    shutil.rmtree(run_file(export_copy, run_id).parent)
    # when it is read
    models, ticks = read(export_copy)
    # then the version keeps its run id but has no run; the others have theirs
    first = models["模型-分类"].versions[0]
    assert (first.run_id, first.run) == (run_id, None)
    assert ticks["runs"] == 8


def test_a_dataset_input_written_by_newer_releases_is_read(export_copy: Path) -> None:
    # given a run whose file lists dataset inputs, as newer releases of the tool write
    models, _ = read(export_copy)
    path = run_file(export_copy, models["Modèle-ü"].versions[0].run_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    dataset = {"name": "iris-train", "digest": "d1", "source_type": "local", "source": "{}"}
    data["mlflow"]["inputs"] = {"dataset_inputs": [{"dataset": dataset, "tags": []}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    # when it is read, then the run's dataset is the first input's name
    models, _ = read(export_copy)
    run = models["Modèle-ü"].versions[0].run
    assert run is not None and run.dataset == "iris-train"


def test_infinities_and_text_values_come_out_as_floats(export_copy: Path) -> None:
    # given a run whose latest values are written as Python writes infinities, and as text
    models, _ = read(export_copy)
    path = run_file(export_copy, models["Modèle-ü"].versions[1].run_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["mlflow"]["metrics"]["accuracy"][-1]["value"] = math.inf
    data["mlflow"]["metrics"]["loss"][-1]["value"] = "-Infinity"
    path.write_text(json.dumps(data), encoding="utf-8")
    # when it is read, then they are the floats, for the importer to skip and report
    models, _ = read(export_copy)
    run = models["Modèle-ü"].versions[1].run
    assert run is not None and run.metrics == {"accuracy": math.inf, "loss": -math.inf}


def test_a_directory_that_is_not_an_export_is_rejected_naming_the_problem(
    tmp_path: Path, export_copy: Path
) -> None:
    def rejection(where: Path) -> str:
        with pytest.raises(ProviderRejected) as rejected:
            read(where)
        return rejected.value.reason

    # a directory that does not exist, and one with no model.json
    assert "no such directory" in rejection(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "no model.json" in rejection(tmp_path / "empty")
    model_file = export_copy / "models" / "Modèle-ü" / "model.json"
    written = model_file.read_text(encoding="utf-8")
    # a model file that is not JSON, or JSON of another shape: the file is named
    model_file.write_text("{not json", encoding="utf-8")
    assert str(model_file) in rejection(export_copy)
    assert "not readable as JSON" in rejection(export_copy)
    model_file.write_text('{"mlflow": {"models": []}}', encoding="utf-8")
    assert "has no mlflow.registered_model" in rejection(export_copy)
    # a version whose number is not a number: the file and the field are named
    model_file.write_text(written.replace('"version": "3"', '"version": "three"'), "utf-8")
    reason = rejection(export_copy)
    assert str(model_file) in reason and "versions[1].version" in reason
