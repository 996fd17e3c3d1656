"""What the registry answers, as pydantic models in the domain's words.

Each model names the server's schema it reads (``SCHEMA``, a component of the server's
OpenAPI document; a test holds them together). Fields the server adds later are kept
(``extra="allow"``), so an older client reads a newer server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    SCHEMA: ClassVar[str]
    SENT_BY_ITS_ROUTE: ClassVar[frozenset[str]] = frozenset()  # optional in SCHEMA, never absent


class CommandResult(Answer):
    """What a command did: the model's id, its version after it, the log position of its
    last event, and what it made (a run id, a version number)."""

    SCHEMA = "CommandResponse"
    id: str
    version: int
    position: int | None
    run_id: str | None = None
    model_version: int | None = None
    environment: str | None = None
    request_id: str | None = None
    status: str | None = None
    target: str | None = None


class RunStarted(CommandResult):
    """A training run started: ``run_id`` names it (its route always sends it)."""

    SENT_BY_ITS_ROUTE: ClassVar[frozenset[str]] = frozenset({"run_id"})
    run_id: str


class BestMetric(Answer):
    SCHEMA = "BestMetric"
    value: float
    model_version: int


class TrainingRun(Answer):
    SCHEMA = "TrainingRunView"
    run_id: str
    dataset: str
    hyperparameters: dict[str, Any]
    backend: str
    started_at: datetime
    state: str
    model_version: int | None
    failure_reason: str | None
    base_model: str | None
    job_id: str | None


class Version(Answer):
    """A trained version, as a model's page holds it."""

    SCHEMA = "TrainedVersion"
    number: int
    run_id: str
    metrics: dict[str, float]
    artifact_uri: str | None
    created_at: datetime
    output_model: str | None
    description: str
    tags: list[str]
    source_version: int | None = None  # its number in the registry it was imported from


class VersionRecord(Version):
    """A trained version read on its own: also who made it and where in the log."""

    SCHEMA = "VersionRecord"
    created_by: str
    position: int


class Deployment(Answer):
    """What serves an environment now."""

    SCHEMA = "DeploymentView"
    environment: str
    model_version: int
    endpoint_url: str | None
    deployed_at: datetime
    previous_versions: list[int]
    target: str


class Model(Answer):
    SCHEMA = "ModelResponse"
    id: str
    version: int
    name: str
    project: str
    description: str
    task: str
    framework: str
    tags: list[str]
    configuration: dict[str, Any]
    owner: str
    status: str
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    best_metrics: dict[str, BestMetric]
    versions: list[Version]
    training_runs: list[TrainingRun]
    deployments: dict[str, Deployment]


class ServingSummary(Answer):
    SCHEMA = "ServingSummary"
    model_version: int
    endpoint_url: str | None


class ModelSummary(Answer):
    """A model as the catalogue lists it."""

    SCHEMA = "ModelSummary"
    id: str
    version: int
    name: str
    project: str
    description: str
    task: str
    framework: str
    tags: list[str]
    owner: str
    status: str
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    best_metrics: dict[str, BestMetric]
    deployments: dict[str, ServingSummary]


class DeploymentStretch(Answer):
    """Which version served an environment, from when until when, and who did it."""

    SCHEMA = "DeploymentStretch"
    environment: str
    model_version: int
    endpoint_url: str | None
    action: str
    deployed_by: str
    from_position: int
    from_time: datetime
    to_position: int | None
    to_time: datetime | None
    ended_by: str | None


class Deployments(Answer):
    SCHEMA = "ModelDeploymentsResponse"
    id: str
    as_of: datetime | None
    current: dict[str, DeploymentStretch]
    history: list[DeploymentStretch]


class Event(Answer):
    """An event of the log: a model's (``model_id``), a metric definition's (``metric``),
    or, for admins, a key's (``key_id``)."""

    SCHEMA = "HistoryItem"
    position: int
    version: int
    type: str
    timestamp: datetime
    actor: str
    correlation_id: str
    causation_id: str
    data: dict[str, Any]
    model_id: str | None = None
    metric: str | None = None
    key_id: str | None = None


class TrainingRunCounts(Answer):
    SCHEMA = "TrainingRunCounts"
    started: int
    completed: int
    failed: int


class MetricDistribution(Answer):
    SCHEMA = "MetricDistribution"
    count: int
    mean: float
    min: float
    max: float
    direction: str
    best: float


class Statistics(Answer):
    SCHEMA = "StatisticsResponse"
    total_models: int
    by_status: dict[str, int]
    by_task: dict[str, int]
    by_framework: dict[str, int]
    training_runs: TrainingRunCounts
    active_deployments: dict[str, int]
    metrics: dict[str, MetricDistribution]


class LeaderboardEntry(Answer):
    SCHEMA = "RankedModel"
    rank: int
    id: str
    name: str
    project: str
    task: str
    model_version: int
    value: float


class MetricDefinition(Answer):
    SCHEMA = "MetricDefinitionView"
    name: str
    direction: str
    source: str
    unit: str | None
    description: str | None
    versions: int
    changed_at: datetime | None
    changed_by: str | None


class DefinedMetric(Answer):
    """What declaring (or removing) a metric's definition recorded."""

    SCHEMA = "MetricDefinitionChanged"
    id: str
    version: int
    position: int | None
    name: str
    direction: str
    source: str
    unit: str | None
    description: str | None


class HubImport(Answer):
    SCHEMA = "HubImportResponse"
    id: str
    version: int
    position: int | None
    created: bool
    changed: list[str]
    model_version: int | None
    revision: str


class ApiKey(Answer):
    SCHEMA = "KeyResponse"
    id: str
    name: str
    role: str
    projects: list[str] | None
    issued_at: datetime
    issued_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool


class IssuedKey(Answer):
    """A new key: ``key`` is its secret text, shown this once."""

    SCHEMA = "IssuedKeyResponse"
    id: str
    name: str
    role: str
    projects: list[str] | None
    key: str
    position: int | None


class RevokedKey(Answer):
    SCHEMA = "KeyRevokedResponse"
    id: str
    revoked: bool
    position: int | None


EVERY_ANSWER: tuple[type[Answer], ...] = (
    CommandResult, RunStarted, BestMetric, TrainingRun, Version, VersionRecord, Deployment, Model,
    ServingSummary, ModelSummary, DeploymentStretch, Deployments, Event, TrainingRunCounts,
    MetricDistribution, Statistics, LeaderboardEntry, MetricDefinition, DefinedMetric,
    HubImport, ApiKey, IssuedKey, RevokedKey,
)  # fmt: skip
