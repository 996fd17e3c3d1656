"""Queries over the event store on purpose: a model now, as it was, and its audit trail.

(The catalogue, search and statistics will read projections; these answer
from the log itself so they are exact at any version or time.)
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from itertools import takewhile
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import project_aggregate

from queries.directions import Directions
from queries.errors import UnknownModel
from queries.ports import EventLog
from queries.visibility import Projects, ensure_visible
from write_model.model import AIModel
from write_model.values import instant

BASE_EVENT_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "actor",
        "correlation_id",
        "causation_id",
    }
)


def get_model(
    event_log: EventLog,
    model_id: UUID,
    *,
    at_version: int | None = None,
    as_of: datetime | None = None,
    visible: Projects = None,
) -> tuple[AIModel, int]:
    """Fold the model's events from the store (never the command side's cache,
    which another API process's writes can make stale); with the position of
    the last event folded."""
    rows = event_log.stored_history(model_id)
    folded = [
        (position, cast(AIModel.Event, event_log.decode(stored)))
        for position, stored in rows
        if at_version is None or stored.originator_version <= at_version
    ]
    # The very words of "no such model" (queries.model_reader says the same for an unknown id)
    unknown = UnknownModel(
        f"model {model_id} did not exist at {as_of.isoformat()}"
        if as_of
        else f"model {model_id} not found",
        field="model_id",
    )
    created = folded[0][1] if folded else None
    if isinstance(created, AIModel.ModelCreated) and not _sees(visible, created.project):
        raise unknown  # the very words of "no such model": nothing to tell them apart
    if as_of is not None:
        folded = list(takewhile(lambda item: item[1].timestamp <= as_of, folded))
    model = project_aggregate(None, (event for _, event in folded))
    if not isinstance(model, AIModel):  # no such model, or an API key's id
        raise unknown
    if at_version is not None and model.version != at_version:
        raise UnknownModel(f"model {model_id} has no version {at_version}", field="at_version")
    return model, folded[-1][0]


DEFAULTS_ONLY = Directions()


def _sees(visible: Projects, project: str) -> bool:
    return visible is None or project in visible


def model_view(model: AIModel, directions: Directions = DEFAULTS_ONLY) -> dict[str, Any]:
    """The model folded from the log, its best metrics by ``directions`` (by default, the
    directions every metric's name gives it: as if none were declared)."""
    return {
        "id": str(model.id),
        "version": model.version,
        "name": model.name,
        "project": model.project,
        "description": model.description,
        "task": model.task,
        "framework": model.framework,
        "tags": list(model.tags),
        "configuration": dict(model.configuration),
        "owner": model.owner,
        "status": str(model.status),
        "created_at": instant(model.created_on),
        "updated_at": instant(model.modified_on),
        "latest_version": len(model.versions) or None,
        "best_metrics": directions.best_of_versions(model.versions),
        "versions": [asdict(version) for version in model.versions],
        "training_runs": [asdict(run) for run in model.training_runs.values()],
        "deployments": {
            env: asdict(deployment) for env, deployment in sorted(model.deployments.items())
        },
        "pending_deployments": {
            env: asdict(request) for env, request in sorted(model.pending_deployments.items())
        },
    }


def model_history(
    event_log: EventLog, model_id: UUID, visible: Projects = None
) -> list[dict[str, Any]]:
    events = event_log.history(model_id)
    if not events or not isinstance(events[0][1], AIModel.ModelCreated):  # none, or a key's
        raise UnknownModel(f"model {model_id} not found", field="model_id")
    ensure_visible(events[0][1].project, visible, model_id)
    return [history_item(position, event) for position, event in events]


def history_item(position: int, event: Any) -> dict[str, Any]:
    return {
        "position": position,
        "version": event.originator_version,
        "type": type(event).__name__,
        "timestamp": instant(event.timestamp),
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "data": {k: v for k, v in vars(event).items() if k not in BASE_EVENT_FIELDS},
    }
