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
    # A deploy's version by MLflow's number: ours is looked up when it is sent (an import
    # running beside this one, or a user, may have numbered versions since the plan).
    serves: int | None = None


def plan_model(wanted: WantedModel, imported: ImportedModel | None) -> list[Step]:
    """Raises pydantic's ValidationError for what MLflow allows and ModelLedger does not
    (a name of 256 characters): the caller skips the model, saying why."""
    steps = _metadata(wanted, imported)
    model_id = _model_id(steps[0].command) if imported is None else imported.model.id
    known = dict(imported.versions) if imported else {}
    for version in wanted.versions:
        if version.source_version in known:
            steps.extend(_about(wanted.name, version, known[version.source_version], imported))
        else:
            steps.append(_import(wanted.name, model_id, version))
    return steps + _environments(wanted, imported, model_id, known)


def _model_id(create: Command) -> UUID:
    """The model's id as its validated name gives it (MLflow's may have spaces around)."""
    assert isinstance(create, CreateModel)
    return model_id_for(create.project, create.name)


def plan_archive(name: str, imported: ImportedModel) -> list[Step]:
    """A registered model deleted in MLflow: its imported environments taken down, then
    the model archived (its history stays readable)."""
    model = imported.model
    ours = sorted(
        e for e, v in imported.environments.items() if v is not None and imported.served(e) == v
    )
    if set(model.deployments) - set(ours) or model.pending_deployments:
        return []  # deployed by someone else too: archiving would be refused (the caller says)
    steps = [
        Step(
            "environments undeployed",
            f"{name} @{environment}",
            UndeployModel(model_id=model.id, environment=environment),
            source_of("alias", f"{name}@{environment}", None, None),
            None,
        )
        for environment in ours
    ]
    archive = ArchiveModel(model_id=model.id, reason="deleted in MLflow")
    return [
        *steps,
        Step("models archived", name, archive, source_of("model", name, None, None), None),
    ]


def _metadata(wanted: WantedModel, imported: ImportedModel | None) -> list[Step]:
    name = wanted.name
    if imported is None:
        create = CreateModel(name=name, project=wanted.project, **wanted.fields)
        source = source_of("model", name, instant(wanted.created), None) | {
            "registry": wanted.registry
        }
        return [Step("models created", name, create, source, wanted.created)]
    model = imported.model
    changes = {
        k: v
        for k, v in wanted.fields.items()
        if imported.fields.get(k) != v and getattr(model, k) != v  # (changed, and not yet)
    }
    if not changes:
        return []
    update = UpdateModel(model_id=model.id, **changes)
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
    if imported is None:
        return []
    recorded = imported.about.get(number, {})
    now = imported.model.versions[number - 1]
    wanted = {"description": version.description, "tags": version.tags}
    changes = {
        k: v
        for k, v in wanted.items()
        if recorded.get(k, "" if k == "description" else []) != v and getattr(now, k) != v
    }
    if not changes:
        return []
    update = UpdateVersion(model_id=imported.model.id, model_version=number, **changes)
    what = f"{name}/{version.source_version}"
    source = source_of("version", what, None, version.user_id)
    return [Step("versions updated", f"{name} v{version.source_version}", update, source, None)]


def _environments(
    wanted: WantedModel, imported: ImportedModel | None, model_id: UUID, known: dict[int, int]
) -> list[Step]:
    """Aliases and stages that moved in MLflow since the import recorded them (unless the
    environment serves that version already), and those MLflow no longer names."""
    recorded = imported.environments if imported else {}
    steps = []
    for environment, mlflow_version in sorted(wanted.environments.items()):
        ours = known.get(mlflow_version)  # None: imported by this very run
        if ours is not None and ours in (recorded.get(environment), _served(imported, environment)):
            continue
        # (the version's number is looked up when the step is sent: ``serves``)
        deploy = DeployModel(model_id=model_id, environment=environment, model_version=ours or 1)
        kind = "stage" if environment in wanted.stages else "alias"
        what = f"{wanted.name}@{environment}"
        source = source_of(kind, what, None, None) | {"version": mlflow_version}
        label = f"{wanted.name} @{environment}"
        steps.append(Step("environments deployed", label, deploy, source, None, mlflow_version))
    for environment, last in sorted(recorded.items()):
        named = environment in wanted.named  # (an alias to a version not imported: left as is)
        if last is not None and not named and _served(imported, environment) == last:
            undeploy = UndeployModel(model_id=model_id, environment=environment)
            source = source_of("alias", f"{wanted.name}@{environment}", None, None)
            label = f"{wanted.name} @{environment}"
            steps.append(Step("environments undeployed", label, undeploy, source, None))
    return steps


def _served(imported: ImportedModel | None, environment: str) -> int | None:
    return imported.served(environment) if imported is not None else None


def archived_skip(wanted: WantedModel) -> Skipped:
    return Skipped(wanted.name, "the model is archived in ModelLedger: nothing more is recorded")
