"""What an MLflow registered model becomes in ModelLedger: the model's fields, its
versions with their metrics and parameters, and the environments its aliases and
legacy stages name. What cannot come across is said, with the reason (``Skipped``).

The table in docs/how-to/migrate-from-mlflow.md says the same in words; change both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from commands.messages import MAX_METRICS, MAX_TAGS
from commands.ports import MlflowModel, MlflowVersion
from write_model.values import (
    CONTROL_CHARACTERS,
    MAX_METRIC_NAME_LENGTH,
    has_control_characters,
)

DEFAULT_PROJECT = "mlflow"
DEFAULT_TASK = "unknown"
DEFAULT_FRAMEWORK = "unknown"
FIELD_TAGS = ("project", "task", "framework")  # tags that become the model's fields
STAGES = ("Production", "Staging")  # legacy stages served as environments (in this order)
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")
_ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Skipped:
    """Something of MLflow's that was not imported (or not whole), and why."""

    what: str  # e.g. "fraud-detector v3", "fraud-detector @champion"
    reason: str


@dataclass(frozen=True)
class WantedVersion:
    source_version: int
    created: datetime
    user_id: str
    dataset: str
    metrics: dict[str, float]
    hyperparameters: dict[str, str]
    artifact_uri: str | None
    output_model: str
    description: str
    tags: list[str]


@dataclass
class WantedModel:
    """A registered model as ModelLedger will hold it."""

    name: str
    project: str
    created: datetime
    updated: datetime
    fields: dict[str, Any]  # description, task, framework, tags
    versions: list[WantedVersion] = field(default_factory=list)
    environments: dict[str, int] = field(default_factory=dict)  # environment -> MLflow version
    stages: set[str] = field(default_factory=set)  # the environments a legacy stage names
    named: set[str] = field(default_factory=set)  # every environment MLflow names, served or not
    registry: str = ""  # where MLflow is (a model is archived only by its own registry)
    skipped: list[Skipped] = field(default_factory=list)


def wanted_model(found: MlflowModel, project: str | None, registry: str = "") -> WantedModel:
    skipped: list[Skipped] = []
    wanted = WantedModel(
        registry=registry,
        name=found.name,
        project=_project(found, project, skipped),
        created=moment(found.created_ms),
        updated=moment(found.updated_ms),
        fields={
            "description": found.description[:10_000],
            "task": _identifier(found, "task", DEFAULT_TASK, skipped),
            "framework": _identifier(found, "framework", DEFAULT_FRAMEWORK, skipped),
            "tags": tag_list(found.name, found.tags, skipped, skip=FIELD_TAGS),
        },
        skipped=skipped,
    )
    for version in found.versions:
        if version.status != "READY":
            skipped.append(Skipped(_at(found.name, version), f"its status is {version.status}"))
            continue
        wanted.versions.append(_version(found.name, version, skipped, wanted.created))
    wanted.environments = _environments(found, {v.source_version for v in wanted.versions})
    wanted.stages = {s.lower() for s in STAGES} - {a.lower() for a in found.aliases}
    staged = {v.stage.lower() for v in found.versions if v.stage in STAGES}
    wanted.named = {a.lower() for a in found.aliases} | staged
    return wanted


def _version(
    name: str, found: MlflowVersion, skipped: list[Skipped], registered: datetime
) -> WantedVersion:
    what = _at(name, found)
    run = found.run
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    if run is None and found.run_id:
        skipped.append(Skipped(what, f"its run {found.run_id} is gone: no metrics or parameters"))
    elif run is not None and run.deleted:
        skipped.append(Skipped(what, f"its run {run.run_id} was deleted: no metrics or parameters"))
    elif run is not None:
        metrics = _metrics(what, run.metrics, skipped)
        params = {k[:200]: v[:6000] for k, v in sorted(run.params.items())}
    dataset = (run.dataset if run is not None else None) or (
        f"mlflow run {found.run_id}" if found.run_id else "unknown"
    )
    return WantedVersion(
        source_version=found.version,
        created=max(moment(found.created_ms), registered),  # (a time missing reads as 0)
        user_id=found.user_id or (run.user_id if run is not None else ""),
        dataset=_one_line(dataset)[:1000],
        metrics=metrics,
        hyperparameters=params,
        artifact_uri=found.source[:2000] or None,
        output_model=f"models:/{name}/{found.version}"[:1000],
        description=found.description[:10_000],
        tags=tag_list(what, found.tags, skipped),
    )


def _metrics(what: str, found: dict[str, float], skipped: list[Skipped]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, value in sorted(found.items()):
        if not math.isfinite(value):
            skipped.append(Skipped(what, f"metric {name!r} is {value} (only finite numbers)"))
        elif len(name) > MAX_METRIC_NAME_LENGTH or has_control_characters(name):
            skipped.append(Skipped(what, f"metric name {name[:40]!r}... is not a metric name"))
        elif len(metrics) >= MAX_METRICS:
            skipped.append(Skipped(what, f"metric {name!r}: more than {MAX_METRICS} metrics"))
        else:
            metrics[name] = value
    return metrics


def _environments(found: MlflowModel, imported: set[int]) -> dict[str, int]:
    """Each alias serves its version in an environment of its name; a legacy stage does
    the same (its newest version) where no alias names that environment."""
    environments: dict[str, int] = {}
    for stage in STAGES:
        staged = [v.version for v in found.versions if v.stage == stage]
        if staged and stage.lower() not in {a.lower() for a in found.aliases}:
            environments[stage.lower()] = max(staged)
    for alias, version in sorted(found.aliases.items()):
        environments[alias.lower()] = version
    return {
        environment: version
        for environment, version in environments.items()
        if _ENVIRONMENT.match(environment) and version in imported
    }


def environment_skips(found: MlflowModel, wanted: WantedModel) -> list[Skipped]:
    """The aliases that serve nothing, and why."""
    skips = []
    for alias, version in sorted(found.aliases.items()):
        what = f"{found.name} @{alias}"
        if not _ENVIRONMENT.match(alias.lower()):
            skips.append(Skipped(what, "not an environment name (letters, digits, - and _)"))
        elif wanted.environments.get(alias.lower()) != version:
            skips.append(Skipped(what, f"version {version} was not imported"))
    return skips


def tag_list(
    what: str, tags: dict[str, str], skipped: list[Skipped], skip: tuple[str, ...] = ()
) -> list[str]:
    """MLflow's key/value tags as ModelLedger's tags: ``key=value`` (``key`` alone when the
    value is empty), without MLflow's own (``mlflow.*``)."""
    listed: list[str] = []
    for key, value in sorted(tags.items()):
        if key.startswith("mlflow.") or key in skip:
            continue
        tag = f"{key}={value}" if value else key
        if len(tag) > 64 or has_control_characters(tag) or not tag.strip():
            skipped.append(Skipped(what, f"tag {tag[:40]!r} is not a tag (1 to 64 characters)"))
        elif len(listed) >= MAX_TAGS:
            skipped.append(Skipped(what, f"tag {tag!r}: more than {MAX_TAGS} tags"))
        else:
            listed.append(tag.strip())
    return list(dict.fromkeys(listed))


def _project(found: MlflowModel, project: str | None, skipped: list[Skipped]) -> str:
    if project is not None:
        return project
    tagged = found.tags.get("project", "").strip()
    if tagged and not _PROJECT.match(tagged):
        skipped.append(Skipped(found.name, f"project tag {tagged!r} is not a project name"))
        return DEFAULT_PROJECT
    return tagged or DEFAULT_PROJECT


def _identifier(found: MlflowModel, tag: str, default: str, skipped: list[Skipped]) -> str:
    value = found.tags.get(tag, "").strip().lower()
    if value and not _IDENTIFIER.match(value):
        skipped.append(Skipped(found.name, f"{tag} tag {value!r} is not a {tag} name"))
        return default
    return value or default


def _one_line(text: str) -> str:
    return re.sub(f"[{CONTROL_CHARACTERS}]+", " ", text).strip() or "unknown"


def _at(name: str, version: MlflowVersion) -> str:
    return f"{name} v{version.version}"


def moment(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
