"""What earlier imports recorded, read back from the log: which models came from MLflow
(by MLflow's name, the source id on their ModelCreated), and for one model what the
import last said of each field, version and environment.

An import compares MLflow with what the import last recorded, not with the model as it
stands: a description a user edited in ModelLedger stays until MLflow's changes, and a
version someone deployed by hand stays until the MLflow alias moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import Mapper
from eventsourcing.utils import get_topic

from commands.ports import LogPages
from commands.registry import ModelRegistry, store_errors
from write_model.model import AIModel

SYSTEM = "mlflow"
ACTOR = "mlflow-import"
MODEL_FIELDS = ("description", "task", "framework", "tags")
PAGE = 1000


@dataclass
class ImportedModel:
    """One model as the store holds it, and as the import last recorded it."""

    model: AIModel
    fields: dict[str, Any] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)  # MLflow's number -> ours
    about: dict[int, dict[str, Any]] = field(default_factory=dict)  # ours -> description, tags
    environments: dict[str, int | None] = field(default_factory=dict)  # None: taken down

    def served(self, environment: str) -> int | None:
        deployment = self.model.deployments.get(environment)
        return deployment.model_version if deployment is not None else None


@dataclass(frozen=True)
class StoreView:
    """The store before an import: its models from MLflow, and whether it has any model."""

    from_mlflow: dict[str, UUID]  # MLflow's name -> the model's id
    has_models: bool
    registries: dict[str, str]  # MLflow's name -> where it was imported from


def store_view(log: LogPages, mapper: Mapper[UUID]) -> StoreView:
    """Every ModelCreated in the log, a page at a time."""
    topic = get_topic(AIModel.ModelCreated)
    names: dict[str, UUID] = {}
    registries: dict[str, str] = {}
    after, seen = 0, False
    while page := log.page(after, PAGE, topics=(topic,)):
        for notification in page:
            created: Any = mapper.to_domain_event(notification)
            seen = True
            if is_imported(created):
                names[created.source["id"]] = created.originator_id
                registries[created.source["id"]] = created.source.get("registry", "")
        after = page[-1].id
    return StoreView(names, seen, registries)


def imported_model(registry: ModelRegistry, model_id: UUID) -> ImportedModel | None:
    """The model's events folded: the model, and what the import recorded of it."""
    with store_errors():
        rows = registry.store.select_history(model_id)
    events = [registry.mapper.to_domain_event(stored) for _, stored in rows]
    model = project_aggregate(None, events) if events else None
    if not isinstance(model, AIModel):
        return None
    found = ImportedModel(model)
    for event in events:
        if is_imported(event):
            _take(found, event)
    return found


def is_imported(event: Any) -> bool:
    source = getattr(event, "source", None)
    return isinstance(source, dict) and source.get("system") == SYSTEM


def _take(found: ImportedModel, event: Any) -> None:
    if isinstance(event, AIModel.ModelCreated):
        found.fields = {name: getattr(event, name) for name in MODEL_FIELDS}
    elif isinstance(event, AIModel.ModelUpdated):
        found.fields.update((k, v) for k, v in event.changes.items() if k in MODEL_FIELDS)
    elif isinstance(event, AIModel.ModelTrained) and event.source_version is not None:
        found.versions[event.source_version] = event.model_version
        found.about[event.model_version] = {"description": "", "tags": []}
    elif isinstance(event, AIModel.VersionUpdated):
        found.about.setdefault(event.model_version, {}).update(event.changes)
    elif isinstance(event, AIModel.ModelDeployed):
        found.environments[event.environment] = event.model_version
    elif isinstance(event, AIModel.ModelUndeployed):
        found.environments[event.environment] = None


def source_of(kind: str, what: str, time: str | None, user_id: str | None) -> dict[str, Any]:
    """The ``source`` an imported event carries: MLflow's id of the fact, its time, its user."""
    source: dict[str, Any] = {"system": SYSTEM, "kind": kind, "id": what}
    if time is not None:
        source["time"] = time
    if user_id:
        source["user_id"] = user_id
    return source
