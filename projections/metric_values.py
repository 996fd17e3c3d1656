"""Each model's values of each metric over its versions: how many, their exact sum,
the lowest and the highest with the first version that reached each. Nothing here
says which is best: readers apply the metric's direction (queries.directions)."""

from __future__ import annotations

from typing import Any

from read_model.exact import exact, plus


def record_metric(
    metrics: dict[str, dict[str, Any]],
    model_id: str,
    name: str,
    value: float,
    version: int,
) -> None:
    m = metrics.get(name)
    if m is None:
        metrics[name] = {
            "model_id": model_id,
            "metric": name,
            "count": 1,
            "total": exact(value),
            "min_value": value,
            "min_version": version,
            "max_value": value,
            "max_version": version,
        }
        return
    m["count"] += 1
    m["total"] = plus(m["total"], exact(value))
    if value < m["min_value"]:
        m["min_value"], m["min_version"] = value, version
    if value > m["max_value"]:
        m["max_value"], m["max_version"] = value, version


def extremes(m: dict[str, Any]) -> dict[str, Any]:
    """A model's lowest and highest value of a metric, each with the first version that
    reached it: which is its best is read with the metric's direction (queries.directions)."""
    return {k: m[k] for k in ("min_value", "min_version", "max_value", "max_version")}
