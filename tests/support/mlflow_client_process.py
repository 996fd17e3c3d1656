"""Drives ``mlflow.MlflowClient`` for the tests from inside MLflow's own virtualenv.

Run with that venv's python (MLFLOW_TRACKING_URI set): importing mlflow costs seconds,
so one long-lived process answers many calls. Protocol, one JSON object per line:
``{"verb": "create_experiment", "args": {...}}`` on stdin; ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": {"type", "message", "error_code"}}`` on stdout. The first
line written is ``{"ready": true, "mlflow": "<version>"}``. Floats that JSON cannot hold
travel as the strings "NaN", "Infinity" and "-Infinity", both ways.

This file imports nothing of the project: it runs in the other interpreter.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

# (mlflow is in MLflow's own venv only: not the project's, so mypy has no stubs for it)
import mlflow  # type: ignore[import-not-found]
from mlflow.entities import (  # type: ignore[import-not-found]
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    RunTag,
)
from mlflow.exceptions import MlflowException  # type: ignore[import-not-found]

client = mlflow.MlflowClient()


def to_float(value: float | str) -> float:
    return float(value)  # float("NaN"), float("Infinity") and float("-Infinity") parse


def from_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def history(values: Any) -> list[float | str]:
    """A metric's values by step: a list, or one value (step 0)."""
    return list(values) if isinstance(values, list) else [values]


def create_experiment(name: str) -> str:
    return str(client.create_experiment(name))


def log_run(
    experiment_id: str,
    run_name: str,
    metrics: dict[str, Any],
    params: dict[str, str],
    dataset: str | None = None,
    user: str | None = None,
) -> str:
    """One finished run: each metric logged at steps 0..n-1 (its last value is the
    latest), its params, a dataset input, and the user MLflow records as its owner."""
    tags = {"mlflow.user": user} if user else {}
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    run_id = str(run.info.run_id)
    now = int(time.time() * 1000)
    batch = [
        Metric(key, to_float(value), now + step, step)
        for key, values in metrics.items()
        for step, value in enumerate(history(values))
    ]
    client.log_batch(
        run_id,
        metrics=batch,
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag("seeded", "yes")],
    )
    if dataset:
        entity = Dataset(dataset, f"d-{len(dataset)}", "local", json.dumps({"uri": dataset}))
        context = InputTag("mlflow.data.context", "training")
        client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[context])])
    client.set_terminated(run_id, "FINISHED")
    return run_id


def create_registered_model(
    name: str, description: str = "", tags: dict[str, str] | None = None
) -> dict[str, Any]:
    return model_dict(client.create_registered_model(name, tags=tags, description=description))


def create_model_version(
    name: str,
    source: str,
    run_id: str | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    made = client.create_model_version(
        name, source, run_id=run_id, tags=tags, description=description
    )
    return version_dict(made)


def set_registered_model_alias(name: str, alias: str, version: int) -> None:
    client.set_registered_model_alias(name, alias, str(version))


def delete_registered_model_alias(name: str, alias: str) -> None:
    client.delete_registered_model_alias(name, alias)


def transition_model_version_stage(name: str, version: int, stage: str) -> dict[str, Any]:
    made = client.transition_model_version_stage(name, str(version), stage)
    return version_dict(made)


def delete_run(run_id: str) -> None:
    client.delete_run(run_id)


def delete_model_version(name: str, version: int) -> None:
    client.delete_model_version(name, str(version))


def delete_registered_model(name: str) -> None:
    client.delete_registered_model(name)


def update_registered_model(name: str, description: str) -> None:
    client.update_registered_model(name, description=description)


def update_model_version(name: str, version: int, description: str) -> None:
    client.update_model_version(name, str(version), description=description)


def set_registered_model_tag(name: str, key: str, value: str) -> None:
    client.set_registered_model_tag(name, key, value)


def set_model_version_tag(name: str, version: int, key: str, value: str) -> None:
    client.set_model_version_tag(name, str(version), key, value)


def get_registered_model(name: str) -> dict[str, Any]:
    return model_dict(client.get_registered_model(name))


def search_registered_models() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        found += [model_dict(m) for m in page]
        token = page.token
        if not token:
            return found


def search_model_versions(name: str) -> list[dict[str, Any]]:
    escaped = name.replace("'", "\\'")
    versions = client.search_model_versions(f"name = '{escaped}'")
    return sorted((version_dict(v) for v in versions), key=lambda v: v["version"])


def get_run(run_id: str) -> dict[str, Any]:
    run = client.get_run(run_id)
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return {
        "run_id": run.info.run_id,
        "user_id": run.info.user_id,
        "lifecycle_stage": run.info.lifecycle_stage,
        "start_time": run.info.start_time,
        "metrics": {k: from_float(v) for k, v in run.data.metrics.items()},
        "params": dict(run.data.params),
        "datasets": [d.dataset.name for d in inputs],
    }


def model_dict(model: Any) -> dict[str, Any]:
    return {
        "name": model.name,
        "created_ms": model.creation_timestamp,
        "updated_ms": model.last_updated_timestamp,
        "description": model.description or "",
        "tags": dict(model.tags),
        "aliases": {alias: int(v) for alias, v in (model.aliases or {}).items()},
    }


def version_dict(version: Any) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": int(version.version),
        "created_ms": version.creation_timestamp,
        "updated_ms": version.last_updated_timestamp,
        "description": version.description or "",
        "tags": dict(version.tags),
        "source": version.source,
        "run_id": version.run_id or "",
        "user_id": version.user_id or "",
        "stage": version.current_stage,
        "status": version.status,
    }


def ping() -> str:
    return str(mlflow.__version__)


VERBS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        create_experiment,
        log_run,
        create_registered_model,
        create_model_version,
        set_registered_model_alias,
        delete_registered_model_alias,
        transition_model_version_stage,
        delete_run,
        delete_model_version,
        delete_registered_model,
        update_registered_model,
        update_model_version,
        set_registered_model_tag,
        set_model_version_tag,
        get_registered_model,
        search_registered_models,
        search_model_versions,
        get_run,
        ping,
    )
}


def answer(line: str) -> dict[str, Any]:
    try:
        request = json.loads(line)
        verb = VERBS[request["verb"]]
        return {"ok": True, "result": verb(**request.get("args", {}))}
    except MlflowException as error:
        return {"ok": False, "error": describe(error, error.error_code)}
    except Exception as error:  # every failure goes back as an answer
        return {"ok": False, "error": describe(error, "")}


def describe(error: Exception, code: str) -> dict[str, str]:
    message = getattr(error, "message", None) or str(error)
    return {"type": type(error).__name__, "message": message, "error_code": code}


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever mlflow prints must not break the protocol
    out.write(json.dumps({"ready": True, "mlflow": mlflow.__version__}) + "\n")
    out.flush()
    for line in sys.stdin:
        if line.strip():
            out.write(json.dumps(answer(line), allow_nan=False) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
