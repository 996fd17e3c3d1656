"""The bodies the queries answer (GET): one model, the catalogue, its statistics and
leaderboards, versions, deployments and the event feed.

The readers of queries/ encode each answer once (orjson) and the routes send those bytes
as they are; these models say what the bytes hold, in the OpenAPI document (which
Schemathesis checks every answer against), for clients, GraphQL and the reference pages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from write_model.metric_definition import Direction
from write_model.values import ModelStatus

# The one text form of a time (write_model.values.instant): RFC 3339, UTC, microseconds.
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
ModelId = Annotated[str, Field(description="the model's id (a UUID)")]
Cursor = Annotated[
    str | None,
    Field(description="send as cursor for the next page; null: this is the last page"),
]
AsOf = Annotated[
    str | None,
    Field(
        description="the time asked about (as_of), in UTC; null: now",
        json_schema_extra={"format": "date-time"},
    ),
]
RunState = Literal["running", "completed", "failed"]
TIME_EXAMPLE = "2026-01-31T12:00:00.000000+00:00"
MODEL_ID_EXAMPLE = "0b6c3f8e-6d1a-5c8e-9a59-3c1f0b2d4e5f"


# -- one model ---------------------------------------------------------------------------


class TrainingRunView(BaseModel):
    run_id: str
    dataset: str
    hyperparameters: dict[str, Any]
    backend: str = Field(description="external (reported by the client) or a provider")
    started_at: Time
    state: RunState
    model_version: int | None = Field(description="the version it produced, once completed")
    failure_reason: str | None
    base_model: str | None = Field(description="what a provider fine-tunes, if any")
    job_id: str | None = Field(description="the provider's job, once submitted")


class TrainedVersion(BaseModel):
    number: int
    run_id: str = Field(description="the training run that produced it")
    metrics: dict[str, float]
    artifact_uri: str | None
    created_at: Time
    output_model: str | None = Field(description="the trained model's name at its backend")
    description: str = Field(description="what people wrote about it (PATCH the version)")
    tags: list[str]
    source_version: int | None = Field(
        default=None,
        description="its number in the registry it was imported from (MLflow's numbers "
        "have gaps); null: trained here, or imported from a source without numbers",
    )


class DeploymentView(BaseModel):
    environment: str
    model_version: int
    endpoint_url: str | None
    deployed_at: Time
    previous_versions: list[int] = Field(description="the rollback stack, newest last")
    previous_endpoint_urls: list[str | None] = Field(
        description="the endpoint of each previous version, restored on rollback"
    )
    target: str = Field(description="who runs the endpoint: external, or a provider")
    endpoint_name: str | None = Field(description="the provider's name for the endpoint")


class PendingDeployment(BaseModel):
    """A deploy or undeploy a provider is still carrying out."""

    request_id: str
    action: Literal["deploy", "undeploy"]
    target: str
    model_version: int | None = Field(description="deploy: the version to serve")
    environment: str | None = Field(
        default=None, description="the environment (answers folded from the event log only)"
    )
    requested_at: Time | None = Field(
        default=None, description="when it was asked for (answers from the catalogue only)"
    )


class ModelResponse(BaseModel):
    id: str
    version: int = Field(description="the model's aggregate version (send as If-Match)")
    name: str
    project: str
    description: str
    task: str
    framework: str
    tags: list[str]
    configuration: dict[str, Any]
    owner: str
    status: ModelStatus
    created_at: Time
    updated_at: Time
    latest_version: int | None = Field(description="the newest trained version; null: none")
    best_metrics: dict[str, BestMetric] = Field(
        description="by metric: the best value any version reached, and that version"
    )
    versions: list[TrainedVersion]
    training_runs: list[TrainingRunView]
    deployments: dict[str, DeploymentView] = Field(description="by environment: what serves")
    pending_deployments: dict[str, PendingDeployment] = Field(
        description="by environment: what a provider is still carrying out"
    )


class HistoryItem(BaseModel):
    position: int = Field(description="the event's position in the global log")
    version: int = Field(description="the aggregate's version after the event")
    type: str = Field(description="the event type: ModelCreated, ModelTrained, ...")
    timestamp: Time
    actor: str = Field(description="who caused it (the key's name)")
    correlation_id: str
    causation_id: str = Field(description="the command's id")
    data: dict[str, Any] = Field(description="the event's own fields")


class HistoryResponse(BaseModel):
    id: str
    items: list[HistoryItem] = Field(description="in log order")
    next_after: int | None = Field(
        description="send as after for the next page; null: this page is the last"
    )


class TrainingRunsResponse(BaseModel):
    id: str
    items: list[TrainingRunView] = Field(description="in the order they started")
    next_after: str | None = Field(
        description="send as after for the next page; null: this page is the last"
    )


class VersionRecord(TrainedVersion):
    created_by: str = Field(description="who completed the run")
    position: int = Field(description="the log position of the ModelTrained event")


class VersionsResponse(BaseModel):
    id: ModelId
    items: list[VersionRecord] = Field(description="every trained version, oldest first")


# -- deployments ---------------------------------------------------------------------------


class DeploymentStretch(BaseModel):
    """One version serving an environment, from one event to the one that ended it."""

    environment: str
    model_version: int
    endpoint_url: str | None
    action: Literal["deployed", "rolled_back"] = Field(description="how the stretch began")
    deployed_by: str = Field(description="the actor of the event that began it")
    from_position: int
    from_time: Time
    to_position: int | None = Field(description="null: still serving (at as_of)")
    to_time: Time | None
    ended_by: Literal["deployed", "rolled_back", "undeployed"] | None


class ModelDeploymentsResponse(BaseModel):
    id: ModelId
    as_of: AsOf
    current: dict[str, DeploymentStretch] = Field(description="by environment: what serves")
    history: list[DeploymentStretch] = Field(
        description="every stretch begun by as_of, by environment, then oldest first"
    )


class ServingItem(DeploymentStretch):
    model_id: ModelId


class DeploymentListResponse(BaseModel):
    as_of: AsOf
    items: list[ServingItem] = Field(description="by environment, then model id")
    next_cursor: Cursor


# -- the catalogue ---------------------------------------------------------------------------


class BestMetric(BaseModel):
    value: float = Field(
        description="the best value of any version: the lowest for a metric to minimise "
        "(metric definitions), else the highest"
    )
    model_version: int = Field(description="the first version that reached it")


class ServingSummary(BaseModel):
    model_version: int
    endpoint_url: str | None


class ModelSummary(BaseModel):
    """What a search hit shows: enough to choose, without runs and versions."""

    id: str
    version: int
    name: str
    project: str
    description: str
    task: str
    framework: str
    tags: list[str]
    owner: str
    status: ModelStatus
    created_at: Time
    updated_at: Time
    latest_version: int | None
    best_metrics: dict[str, BestMetric] = Field(description="by metric")
    deployments: dict[str, ServingSummary] = Field(description="by environment: what serves")


class SearchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": MODEL_ID_EXAMPLE,
                            "version": 5,
                            "name": "fraud-detector",
                            "project": "payments",
                            "description": "Flags card fraud in real time",
                            "task": "classification",
                            "framework": "pytorch",
                            "tags": ["fraud", "tabular"],
                            "owner": "alice",
                            "status": "deployed",
                            "created_at": TIME_EXAMPLE,
                            "updated_at": TIME_EXAMPLE,
                            "latest_version": 1,
                            "best_metrics": {"accuracy": {"value": 0.973, "model_version": 1}},
                            "deployments": {
                                "production": {
                                    "model_version": 1,
                                    "endpoint_url": "https://models.example.com/fraud-detector",
                                }
                            },
                        }
                    ],
                    "next_cursor": "WyJuYW1lIiwiYXNjIixudWxsXSwiZnJhdWQtZGV0ZWN0b3IiXQ",
                }
            ]
        }
    )

    items: list[ModelSummary]
    next_cursor: Cursor
    facets: dict[str, dict[str, int]] | None = Field(
        default=None,
        description="only when asked: by facet, how many of the models found (on every "
        "page) have each value, most first",
    )


class TrainingRunCounts(BaseModel):
    started: int
    completed: int
    failed: int


class MetricDistribution(BaseModel):
    count: int = Field(description="how many trained versions reported it")
    mean: float
    min: float
    max: float
    direction: Direction = Field(description="how the metric is read (metric definitions)")
    best: float = Field(description="min or max, by the metric's direction")


class StatisticsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total_models": 3,
                    "by_status": {"deployed": 1, "trained": 2},
                    "by_task": {"classification": 3},
                    "by_framework": {"pytorch": 2, "jax": 1},
                    "training_runs": {"started": 4, "completed": 3, "failed": 1},
                    "active_deployments": {"production": 1},
                    "metrics": {
                        "accuracy": {
                            "count": 3,
                            "mean": 0.9,
                            "min": 0.85,
                            "max": 0.95,
                            "direction": "maximize",
                            "best": 0.95,
                        }
                    },
                }
            ]
        }
    )

    total_models: int = Field(description="archived models included")
    by_status: dict[str, int]
    by_task: dict[str, int]
    by_framework: dict[str, int]
    training_runs: TrainingRunCounts
    active_deployments: dict[str, int] = Field(description="models serving, by environment")
    metrics: dict[str, MetricDistribution] = Field(
        description="by metric: the values trained versions reported"
    )


class RankedModel(BaseModel):
    rank: int = Field(description="1 is the best")
    id: str
    name: str
    project: str
    task: str
    model_version: int = Field(description="the model's version with the best value")
    value: float


class TopPerformingResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "metric": "accuracy",
                    "direction": "maximize",
                    "order": "desc",
                    "items": [
                        {
                            "rank": 1,
                            "id": MODEL_ID_EXAMPLE,
                            "name": "fraud-detector",
                            "project": "payments",
                            "task": "classification",
                            "model_version": 3,
                            "value": 0.973,
                        }
                    ],
                }
            ]
        }
    )

    metric: str
    direction: Direction = Field(description="how the metric is read (metric definitions)")
    order: Literal["asc", "desc"] = Field(
        description="the ranking: by the direction unless the request's order overrode it"
    )
    items: list[RankedModel]
