"""An MLflow registry as MLflow's export tool (the `mlflow-export-import` package) wrote
it to a directory, for importing from an MLflow that cannot be reached, or no longer runs.

The layouts read, as its `export-models`, `export-all` and `export-model` write them:

    DIR/models/<model>/model.json        one registered model with its versions
    DIR/experiments/<id>/<run_id>/run.json   the runs behind the versions
    DIR/<model>/model.json, DIR/model.json   a models directory, or one model's export

Each file is ``{"system": ..., "info": ..., "mlflow": {...}}`` (older releases wrote
the ``mlflow`` part alone, which is read too). A model's ``registered_model`` is
MLflow's REST answer (tags and aliases as lists) with ``versions`` the tool adds (each
a model version; tags as a dict). A run's ``metrics`` hold every logged value of each
metric: the latest is the one MLflow reports, the highest (step, timestamp). Python's
JSON writer wrote NaN and infinities as bare ``NaN``/``Infinity``, which Python reads
back as floats. Runs are found by directory name wherever they are, and are ``None``
when the export does not hold them (the tool skips runs it could not read).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from commands.ports import MlflowModel, MlflowRun, MlflowVersion, ProviderRejected

FORMAT = "a directory written by mlflow-export-import (export-models, export-all, export-model)"


class MlflowExportDirectory:
    """The registered models (and their versions' runs) of an export directory."""

    def __init__(self, where: str) -> None:
        self.where = where

    def gone(self, names: list[str]) -> set[str]:
        """An export may hold some models only: it never says one was deleted."""
        return set()

    def read(self, tick: Callable[[str, int], None]) -> list[MlflowModel]:
        root = Path(self.where)
        if not root.is_dir():
            raise ProviderRejected(f"{root}: no such directory (expected {FORMAT})")
        runs = _RunFiles(root)
        models: list[MlflowModel] = []
        for path in _models(root):
            before = runs.read
            models.append(_model(_Fields.load(path, "registered_model"), runs))
            tick("models", 1)
            tick("versions", len(models[-1].versions))
            tick("runs", runs.read - before)
        return sorted(models, key=lambda m: m.name)


def _models(root: Path) -> list[Path]:
    """The model files of whichever layout ``root`` has; none is not an export."""
    for found in (
        sorted(root.glob("models/*/model.json")),
        sorted(root.glob("*/model.json")),
        [root / "model.json"] if (root / "model.json").is_file() else [],
    ):
        if found:
            return found
    raise ProviderRejected(
        f"{root}: no model.json in {root / 'models'}, its subdirectories or itself: is it {FORMAT}?"
    )


class _Fields:
    """One JSON object of an export file: reads that name the file and the field when
    the file is not what the tool writes, instead of a KeyError in the middle of an import."""

    def __init__(self, path: Path, data: Any, at: str) -> None:
        if not isinstance(data, dict):
            raise ProviderRejected(f"{path}: {at or 'the file'} is not a JSON object ({FORMAT})")
        self.path, self.data, self.at = path, data, at

    @classmethod
    def load(cls, path: Path, key: str) -> _Fields:
        """The file's ``mlflow.key`` (``key`` at the top, as older releases wrote it)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ProviderRejected(f"{path}: not readable as JSON ({error})") from None
        body = data.get("mlflow", data) if isinstance(data, dict) else data
        if not isinstance(body, dict) or key not in body:
            raise ProviderRejected(f"{path}: has no mlflow.{key}: is it {FORMAT}?")
        return cls(path, body, "mlflow")

    def wrong(self, key: str, what: str) -> ProviderRejected:
        return ProviderRejected(f"{self.path}: {self.at}.{key} is not {what}")

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str | int | float):
            raise self.wrong(key, "text")
        return str(value)

    def number(self, key: str, default: int | None = None) -> int:
        value: Any = self.data.get(key, default)
        if isinstance(value, bool):
            raise self.wrong(key, "a whole number")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise self.wrong(key, "a whole number") from None

    def fields(self, key: str) -> _Fields:
        return _Fields(self.path, self.data.get(key) or {}, f"{self.at}.{key}")

    def items(self, key: str) -> list[_Fields]:
        found = self.data.get(key) or []
        if not isinstance(found, list):
            raise self.wrong(key, "a list")
        return [_Fields(self.path, item, f"{self.at}.{key}[{i}]") for i, item in enumerate(found)]

    def pairs(self, key: str, name: str, value: str) -> dict[str, str]:
        """Tags and params: MLflow's REST lists of {key, value}, or a plain dict."""
        found = self.data.get(key) or {}
        if isinstance(found, dict):
            return {str(k): "" if v is None else str(v) for k, v in found.items()}
        return {p.text(name): p.text(value) for p in self.items(key)}


def _model(file: _Fields, runs: _RunFiles) -> MlflowModel:
    found = file.fields("registered_model")
    created = found.number("creation_timestamp", 0)
    versions = sorted(found.items("versions"), key=lambda v: v.number("version"))
    return MlflowModel(
        name=found.text("name") or _missing(found, "name"),
        created_ms=created,
        updated_ms=found.number("last_updated_timestamp", created),
        description=found.text("description"),
        tags=found.pairs("tags", "key", "value"),
        aliases=_aliases(found, versions),
        versions=tuple(_version(v, runs) for v in versions),
    )


def _missing(found: _Fields, key: str) -> NoReturn:
    raise ProviderRejected(f"{found.path}: {found.at} has no {key}")


def _aliases(found: _Fields, versions: list[_Fields]) -> dict[str, int]:
    """The model's list of {alias, version} (REST's), else each version's alias names."""
    listed = found.get("aliases")
    if isinstance(listed, dict):
        return {str(alias): found.fields("aliases").number(str(alias)) for alias in listed}
    aliases = {a.text("alias"): a.number("version") for a in found.items("aliases")}
    for version in versions:
        for alias in version.get("aliases") or []:
            if isinstance(alias, str):
                aliases.setdefault(alias, version.number("version"))
    return aliases


def _version(found: _Fields, runs: _RunFiles) -> MlflowVersion:
    created = found.number("creation_timestamp", 0)
    run_id = found.text("run_id")
    return MlflowVersion(
        version=found.number("version"),
        created_ms=created,
        updated_ms=found.number("last_updated_timestamp", created),
        description=found.text("description"),
        tags=found.pairs("tags", "key", "value"),
        source=found.text("source"),
        run_id=run_id,
        user_id=found.text("user_id"),
        stage=found.text("current_stage", "None"),
        status=found.text("status", "READY"),
        run=runs.run(run_id) if run_id else None,
    )


class _RunFiles:
    """The export's run.json files by their directory's name (the run id): looked up
    only when a version names the run, and read once."""

    def __init__(self, root: Path) -> None:
        self.paths = {path.parent.name: path for path in sorted(root.rglob("run.json"))}
        self.runs: dict[str, MlflowRun | None] = {}
        self.read = 0

    def run(self, run_id: str) -> MlflowRun | None:
        if run_id not in self.runs:
            path = self.paths.get(run_id)
            self.runs[run_id] = _run(_Fields.load(path, "info"), run_id) if path else None
            self.read += path is not None
        return self.runs[run_id]


def _run(body: _Fields, run_id: str) -> MlflowRun:
    info = body.fields("info")
    found = info.text("run_id") or info.text("run_uuid")
    if found != run_id:
        raise ProviderRejected(f"{info.path}: holds run {found!r}, not {run_id!r}")
    tags = body.pairs("tags", "key", "value")
    return MlflowRun(
        run_id=run_id,
        deleted=info.text("lifecycle_stage") == "deleted",
        metrics=_latest_metrics(body.fields("metrics")),
        params=body.pairs("params", "key", "value"),
        dataset=_dataset(body.fields("inputs")),
        user_id=info.text("user_id") or tags.get("mlflow.user", ""),
    )


def _latest_metrics(metrics: _Fields) -> dict[str, float]:
    """Each metric's latest value: its history's highest (step, timestamp), as MLflow
    reports it (a bare value, as some releases wrote, is taken as it is)."""
    latest: dict[str, float] = {}
    for key, history in metrics.data.items():
        if isinstance(history, list):
            points = metrics.items(key)
            if points:
                last = max(points, key=lambda p: (p.number("step", 0), p.number("timestamp", 0)))
                latest[str(key)] = _value(last, "value")
        else:
            latest[str(key)] = _value(metrics, key)
    return latest


def _value(found: _Fields, key: str) -> float:
    """A metric value: a JSON number, NaN and Infinity as Python writes them, or text."""
    value = found.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise found.wrong(key, "a number")
    try:
        return float(value)
    except ValueError:
        raise found.wrong(key, "a number") from None


def _dataset(inputs: _Fields) -> str | None:
    """The first dataset input's name: newer releases of the tool export run inputs."""
    for found in inputs.items("dataset_inputs"):
        name = found.fields("dataset").text("name")
        if name:
            return name
    return None
