"""What a model's page makes of its answer: the audit history with each update's changes
shown as before -> after, and two versions side by side."""

from __future__ import annotations

from typing import Any

from write_model.model import MUTABLE_FIELDS


def with_diffs(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event of the history, a ``ModelUpdated`` with ``diff``: (field, before, after)
    for each field it changed, the before folded from the events before it."""
    state: dict[str, Any] = {}
    shown = []
    for item in history:
        data = item["data"]
        if item["type"] == "ModelCreated":
            state = {field: data.get(field) for field in MUTABLE_FIELDS}
        elif item["type"] == "ModelUpdated":
            changes = data.get("changes", {})
            item = {**item, "diff": [(f, state.get(f), v) for f, v in sorted(changes.items())]}
            state.update(changes)
        shown.append(item)
    return shown


def compared(model: dict[str, Any], first: int, second: int) -> dict[str, Any] | None:
    """Two versions' metrics and training settings, row by row (None: no such version)."""
    by_number = {v["number"]: v for v in model["versions"]}
    runs = {r["run_id"]: r for r in model["training_runs"]}
    if first not in by_number or second not in by_number:
        return None
    a, b = by_number[first], by_number[second]
    run_a, run_b = runs.get(a["run_id"], {}), runs.get(b["run_id"], {})
    metrics = sorted(a["metrics"].keys() | b["metrics"].keys())
    settings = {"dataset": (run_a.get("dataset"), run_b.get("dataset"))}
    settings["backend"] = (run_a.get("backend"), run_b.get("backend"))
    hyper_a, hyper_b = run_a.get("hyperparameters", {}), run_b.get("hyperparameters", {})
    for name in sorted(hyper_a.keys() | hyper_b.keys()):
        settings[f"hyperparameters.{name}"] = (hyper_a.get(name), hyper_b.get(name))
    return {
        "a": a,
        "b": b,
        "metrics": [(name, a["metrics"].get(name), b["metrics"].get(name)) for name in metrics],
        "settings": [(name, *pair) for name, pair in settings.items()],
    }
