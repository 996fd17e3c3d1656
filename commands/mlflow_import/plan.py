"""The commands that bring the store to what MLflow holds: for each registered model,
what changed in MLflow since the import last recorded it, and nothing else.

Each step is one command, so a run stopped anywhere has recorded whole steps only, and
the next run plans from the log again: what was recorded is not planned twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.messages import (
    ArchiveModel,
    Command,
    CreateModel,
    DeployModel,
    ImportVersion,
    UndeployModel,
    UpdateModel,
    UpdateVersion,
)
from commands.mlflow_import.imported import SYSTEM, ImportedModel, source_of
from commands.mlflow_import.wanted import Skipped, WantedModel, WantedVersion
from write_model.values import instant, model_id_for

# What a step does, as the summary counts it.
KINDS = (
    "models created",
    "models updated",
    "versions imported",
    "versions updated",
    "environments deployed",
    "environments undeployed",
    "models archived",
    "metric definitions",
)


@dataclass(frozen=True)
class Step:
    kind: str  # one of KINDS
    what: str  # MLflow's name for what it changes, for the summary
    command: Command
    source: dict[str, Any]
    time: datetime | None  # MLflow's time of the fact; None: MLflow keeps none (aliases)


def plan_model(wanted: WantedModel, imported: ImportedModel | None) -> list[Step]:
    model_id = imported.model.id if imported else model_id_for(wanted.project, wanted.name)
    steps = _metadata(wanted, imported, model_id)
    known = dict(imported.versions) if imported else {}
    next_number = len(imported.model.versions) + 1 if imported else 1
    for version in wanted.versions:
        if version.source_version in known:
            steps.extend(_about(wanted.name, version, known[version.source_version], imported))
            continue
        steps.append(_import(wanted.name, model_id, version))
        known[version.source_version] = next_number
        next_number += 1
    return steps + _environments(wanted, imported, model_id, known)


def plan_archive(name: str, imported: ImportedModel) -> list[Step]:
    """A registered model deleted in MLflow: its imported environments taken down, then
    the model archived (its history stays readable)."""
    model = imported.model
    steps = [
        Step(
            "environments undeployed",
            f"{name} @{environment}",
            UndeployModel(model_id=model.id, environment=environment),
            source_of("alias", f"{name}@{environment}", None, None),
            None,
        )
        for environment, version in sorted(imported.environments.items())
        if version is not None and imported.served(environment) == version
    ]
    archive = ArchiveModel(model_id=model.id, reason="deleted in MLflow")
    return [
        *steps,
        Step("models archived", name, archive, source_of("model", name, None, None), None),
    ]


def _metadata(wanted: WantedModel, imported: ImportedModel | None, model_id: UUID) -> list[Step]:
    name = wanted.name
    if imported is None:
        create = CreateModel(name=name, project=wanted.project, **wanted.fields)
        source = source_of("model", name, instant(wanted.created), None)
        return [Step("models created", name, create, source, wanted.created)]
    changes = {k: v for k, v in wanted.fields.items() if imported.fields.get(k) != v}
    if not changes:
        return []
    update = UpdateModel(model_id=model_id, **changes)
    source = source_of("model", name, instant(wanted.updated), None)
    return [Step("models updated", name, update, source, wanted.updated)]


def _import(name: str, model_id: UUID, version: WantedVersion) -> Step:
    command = ImportVersion(
        model_id=model_id,
        source=SYSTEM,
        dataset=version.dataset,
        metrics=version.metrics,
        output_model=version.output_model,
        artifact_uri=version.artifact_uri,
        hyperparameters=version.hyperparameters,
        source_version=version.source_version,
        description=version.description,
        tags=version.tags,
    )
    what = f"{name}/{version.source_version}"
    source = source_of("version", what, instant(version.created), version.user_id)
    return Step(
        "versions imported", f"{name} v{version.source_version}", command, source, version.created
    )


def _about(
    name: str, version: WantedVersion, number: int, imported: ImportedModel | None
) -> list[Step]:
    """A version's description and tags edited in MLflow since the import recorded them."""
    recorded = imported.about.get(number, {}) if imported else {}
    wanted = {"description": version.description, "tags": version.tags}
    changes = {
        k: v for k, v in wanted.items() if recorded.get(k, "" if k == "description" else []) != v
    }
    if not changes or imported is None:
        return []
    update = UpdateVersion(model_id=imported.model.id, model_version=number, **changes)
    what = f"{name}/{version.source_version}"
    source = source_of("version", what, None, version.user_id)
    return [Step("versions updated", f"{name} v{version.source_version}", update, source, None)]


def _environments(
    wanted: WantedModel, imported: ImportedModel | None, model_id: UUID, known: dict[int, int]
) -> list[Step]:
    """Aliases and stages that moved since the import recorded them, and those removed."""
    recorded = imported.environments if imported else {}
    steps = []
    for environment, mlflow_version in sorted(wanted.environments.items()):
        number = known[mlflow_version]
        if recorded.get(environment) == number:
            continue
        deploy = DeployModel(model_id=model_id, environment=environment, model_version=number)
        kind = "stage" if environment in wanted.stages else "alias"
        what = f"{wanted.name}@{environment}"
        source = source_of(kind, what, None, None) | {"version": mlflow_version}
        steps.append(
            Step("environments deployed", f"{wanted.name} @{environment}", deploy, source, None)
        )
    for environment, last in sorted(recorded.items()):
        gone = environment not in wanted.environments and last is not None
        if gone and imported is not None and imported.served(environment) == last:
            undeploy = UndeployModel(model_id=model_id, environment=environment)
            source = source_of("alias", f"{wanted.name}@{environment}", None, None)
            steps.append(
                Step(
                    "environments undeployed",
                    f"{wanted.name} @{environment}",
                    undeploy,
                    source,
                    None,
                )
            )
    return steps


def archived_skip(wanted: WantedModel) -> Skipped:
    return Skipped(wanted.name, "the model is archived in ModelLedger: nothing more is recorded")
