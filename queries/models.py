"""Queries over the event store on purpose: a model now, as it was, and its audit trail.

(The catalogue, search and statistics will read projections; these answer
from the log itself so they are exact at any version or time.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from itertools import takewhile
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate

from commands.registry import ModelRegistry, store_errors
from write_model.errors import ModelNotFound
from write_model.model import AIModel

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
    registry: ModelRegistry,
    model_id: UUID,
    *,
    at_version: int | None = None,
    as_of: datetime | None = None,
) -> AIModel:
    """Fold the model's events from the store (never the command side's cache,
    which another API process's writes can make stale)."""
    with store_errors():
        events = cast(Iterable[Aggregate.Event], registry.events.get(model_id, lte=at_version))
        if as_of is not None:
            events = takewhile(lambda event: event.timestamp <= as_of, events)
        model = cast(AIModel | None, project_aggregate(None, events))
    if model is None:
        when = f" at {as_of.isoformat()}" if as_of else ""
        raise ModelNotFound(f"model {model_id} did not exist{when}")
    if at_version is not None and model.version != at_version:
        raise ModelNotFound(f"model {model_id} has no version {at_version}")
    return model


def model_view(model: AIModel) -> dict[str, Any]:
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
        "created_at": model.created_on.isoformat(),
        "updated_at": model.modified_on.isoformat(),
        "latest_version": len(model.versions) or None,
        "versions": [asdict(version) for version in model.versions],
        "training_runs": [asdict(run) for run in model.training_runs.values()],
        "deployments": {
            env: asdict(deployment) for env, deployment in sorted(model.deployments.items())
        },
    }


def model_history(registry: ModelRegistry, model_id: UUID) -> list[dict[str, Any]]:
    with store_errors():
        rows = registry.ledger.select_history(model_id)
    if not rows:
        raise ModelNotFound(f"model {model_id} not found")
    return [
        history_item(position, registry.mapper.to_domain_event(stored)) for position, stored in rows
    ]


def history_item(position: int, event: Any) -> dict[str, Any]:
    return {
        "position": position,
        "version": event.originator_version,
        "type": type(event).__name__,
        "timestamp": event.timestamp.isoformat(),
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "data": {k: v for k, v in vars(event).items() if k not in BASE_EVENT_FIELDS},
    }
