"""Training: a model's runs, the versions the completed ones produced, and the rule
that a run finishes once."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from write_model.errors import TrainingRunFinished, TrainingRunNotFound, VersionNotFound


class RunState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class TrainingRun:
    run_id: str
    dataset: str
    hyperparameters: dict[str, Any]
    backend: str
    started_at: str
    state: RunState = RunState.RUNNING
    model_version: int | None = None
    failure_reason: str | None = None
    base_model: str | None = None
    job_id: str | None = None  # the provider's job, once submitted


@dataclass(frozen=True)
class ModelVersion:
    """A trained version: what one completed training run produced."""

    number: int
    run_id: str
    metrics: dict[str, float]
    artifact_uri: str | None
    created_at: str
    output_model: str | None = None
    description: str = ""  # what people wrote about it since (VersionUpdated)
    tags: list[str] = field(default_factory=list)
    source_version: int | None = None  # its number in the registry it was imported from


VERSION_FIELDS = ("description", "tags")  # what may change about a version


def version_changes(
    versions: list[ModelVersion], number: int, asked: dict[str, Any]
) -> dict[str, Any]:
    """Of the changes asked for a version, those that change something."""
    if not 1 <= number <= len(versions):
        raise VersionNotFound(f"the model has no version {number}", field="number")
    version = versions[number - 1]
    return {k: v for k, v in asked.items() if k in VERSION_FIELDS and getattr(version, k) != v}


def running(runs: dict[str, TrainingRun], run_id: str) -> TrainingRun:
    """The run, if it is still running: a run completes or fails once."""
    run = runs.get(run_id)
    if run is None:
        raise TrainingRunNotFound(f"training run {run_id!r} not found", field="run_id")
    if run.state != RunState.RUNNING:
        raise TrainingRunFinished(f"training run {run_id!r} already {run.state}", field="run_id")
    return run


def imported_number(
    versions: list[ModelVersion], runs: dict[str, TrainingRun], source: str, number: int | None
) -> int | None:
    """Our number of the version imported from ``source`` as its version ``number``."""
    found = (
        v.number
        for v in versions
        if number is not None and v.source_version == number and runs[v.run_id].backend == source
    )
    return next(found, None)
