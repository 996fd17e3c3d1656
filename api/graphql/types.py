"""The GraphQL types that are plain data: each is made from the REST answer's JSON (the
readers' encoded answer), field for field, so GraphQL and REST say the same thing.

GraphQL has no maps: where REST keys an object by metric or environment, GraphQL gives a
list of entries that carry the key (``BestMetric.metric``, ``Serving.environment``),
in REST's key order.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON

# Times travel as REST writes them (``write_model.values.instant``), never re-formatted.
Time = NewType("Time", str)
TIME = strawberry.scalar(
    name="Time",
    description="An RFC 3339 time in UTC with microseconds, as the REST API writes it",
    serialize=str,
    parse_value=str,
)


@strawberry.type
class BestMetric:
    metric: str
    value: float = strawberry.field(description="the best value any version reached")
    model_version: int = strawberry.field(description="the first version that reached it")

    @classmethod
    def listed(cls, by_metric: dict[str, Any]) -> list[BestMetric]:
        return [
            cls(metric=m, value=b["value"], model_version=b["model_version"])
            for m, b in by_metric.items()
        ]


@strawberry.type
class MetricValue:
    name: str
    value: float

    @classmethod
    def listed(cls, metrics: dict[str, float]) -> list[MetricValue]:
        return [cls(name=name, value=value) for name, value in metrics.items()]


@strawberry.type
class TrainingRun:
    run_id: str
    dataset: str
    hyperparameters: JSON
    backend: str = strawberry.field(description="external (reported by the client) or a provider")
    started_at: Time
    state: str = strawberry.field(description="running, completed or failed")
    model_version: int | None = strawberry.field(description="the version it produced")
    failure_reason: str | None
    base_model: str | None
    job_id: str | None

    @classmethod
    def of(cls, run: dict[str, Any]) -> TrainingRun:
        return cls(**{name: run.get(name) for name in RUN_FIELDS})  # type: ignore[arg-type]


RUN_FIELDS = (
    *("run_id", "dataset", "hyperparameters", "backend", "started_at", "state"),
    *("model_version", "failure_reason", "base_model", "job_id"),
)


@strawberry.type
class Serving:
    """What serves in an environment now (the model's own record of it)."""

    environment: str
    model_version: int
    endpoint_url: str | None

    @classmethod
    def listed(cls, by_environment: dict[str, Any]) -> list[Serving]:
        return [
            cls(environment=env, model_version=d["model_version"], endpoint_url=d["endpoint_url"])
            for env, d in by_environment.items()
        ]


@strawberry.type
class PendingDeployment:
    environment: str
    request_id: str
    action: str = strawberry.field(description="deploy or undeploy")
    target: str
    model_version: int | None

    @classmethod
    def listed(cls, by_environment: dict[str, Any]) -> list[PendingDeployment]:
        return [
            cls(
                environment=env,
                request_id=p["request_id"],
                action=p["action"],
                target=p["target"],
                model_version=p.get("model_version"),
            )
            for env, p in by_environment.items()
        ]


@strawberry.type
class DeploymentStretch:
    """One version serving an environment, from the event that began it to the one
    that ended it."""

    environment: str
    model_version: int
    endpoint_url: str | None
    action: str = strawberry.field(description="deployed or rolled_back: how it began")
    deployed_by: str
    from_position: int
    from_time: Time
    to_position: int | None = strawberry.field(description="null: still serving")
    to_time: Time | None
    ended_by: str | None

    @classmethod
    def of(cls, stretch: dict[str, Any]) -> DeploymentStretch:
        return cls(**{name: stretch[name] for name in STRETCH_FIELDS})


STRETCH_FIELDS = (
    *("environment", "model_version", "endpoint_url", "action", "deployed_by"),
    *("from_position", "from_time", "to_position", "to_time", "ended_by"),
)


@strawberry.type
class ModelDeployments:
    current: list[DeploymentStretch] = strawberry.field(description="what serves, by environment")
    history: list[DeploymentStretch] = strawberry.field(
        description="every stretch begun, by environment, then oldest first"
    )

    @classmethod
    def of(cls, found: dict[str, Any]) -> ModelDeployments:
        return cls(
            current=[DeploymentStretch.of(s) for s in found["current"].values()],
            history=[DeploymentStretch.of(s) for s in found["history"]],
        )


@strawberry.type
class Event:
    """An event of the log, as an item of the REST feed (GET /api/v1/events)."""

    position: int = strawberry.field(description="its position in the global log")
    version: int = strawberry.field(description="the aggregate's version after it")
    type: str
    timestamp: Time
    actor: str
    correlation_id: str
    causation_id: str
    data: JSON = strawberry.field(description="the event's own fields")
    model_id: strawberry.ID | None = strawberry.field(description="a model's event: the model")
    metric: str | None = strawberry.field(description="a metric definition's event: its name")
    key_id: str | None = strawberry.field(description="an API key's event (admins only)")
    webhook_id: str | None = strawberry.field(description="a webhook's event (admins only)")
    session_id: str | None = strawberry.field(description="an ended web UI session (admins)")

    @classmethod
    def of(cls, item: dict[str, Any]) -> Event:
        return cls(**{name: item.get(name) for name in EVENT_FIELDS})  # type: ignore[arg-type]


EVENT_FIELDS = (
    *("position", "version", "type", "timestamp", "actor", "correlation_id", "causation_id"),
    *("data", "model_id", "metric", "key_id", "webhook_id", "session_id"),
)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(description="send as after for the next page")

    @classmethod
    def ending(cls, end: str | None) -> PageInfo:
        """A keyset page's: ``end`` is its cursor, None on the last page."""
        return cls(has_next_page=end is not None, end_cursor=end)


@strawberry.type
class Count:
    key: str
    count: int

    @classmethod
    def listed(cls, counts: dict[str, int]) -> list[Count]:
        return [cls(key=key, count=count) for key, count in counts.items()]


@strawberry.type
class TrainingRunCounts:
    started: int
    completed: int
    failed: int


@strawberry.type
class MetricDistribution:
    metric: str
    count: int = strawberry.field(description="how many trained versions reported it")
    mean: float
    min: float
    max: float
    direction: str = strawberry.field(description="maximize or minimize")
    best: float

    @classmethod
    def of(cls, metric: str, found: dict[str, Any]) -> MetricDistribution:
        picked = {name: found[name] for name in ("count", "mean", "min", "max", "direction")}
        return cls(metric=metric, **picked, best=found["best"])


@strawberry.type
class Statistics:
    total_models: int = strawberry.field(description="archived models included")
    by_status: list[Count]
    by_task: list[Count]
    by_framework: list[Count]
    training_runs: TrainingRunCounts
    active_deployments: list[Count] = strawberry.field(description="models serving, by environment")
    metrics: list[MetricDistribution]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Statistics:
        runs = body["training_runs"]
        return cls(
            total_models=body["total_models"],
            by_status=Count.listed(body["by_status"]),
            by_task=Count.listed(body["by_task"]),
            by_framework=Count.listed(body["by_framework"]),
            training_runs=TrainingRunCounts(
                started=runs["started"], completed=runs["completed"], failed=runs["failed"]
            ),
            active_deployments=Count.listed(body["active_deployments"]),
            metrics=[MetricDistribution.of(m, d) for m, d in body["metrics"].items()],
        )


@strawberry.type
class MetricDefinition:
    name: str
    direction: str = strawberry.field(description="maximize or minimize")
    source: str = strawberry.field(description="declared by a team, or the default its name gives")
    unit: str | None
    description: str | None
    versions: int = strawberry.field(description="how many trained versions you may see report it")
    changed_at: Time | None
    changed_by: str | None

    @classmethod
    def of(cls, item: dict[str, Any]) -> MetricDefinition:
        return cls(**{name: item[name] for name in DEFINITION_FIELDS})


DEFINITION_FIELDS = (
    *("name", "direction", "source", "unit", "description", "versions", "changed_at"),
    "changed_by",
)
