"""The bodies of the operators' routes: health, service information, projections.

Built per request (nothing to cache) and sent as they are built; these models say what
they hold, in the OpenAPI document that Schemathesis checks every answer against."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

ProbeStatus = Literal["up", "down", "not configured"]
Seconds = Annotated[float, Field(ge=0)]


class Lagging(BaseModel):
    lag_seconds: float = Field(description="how long ago the oldest event not projected was")
    holder_alive: bool = Field(description="a live process holds (moves on) the projection")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded: a projection stopped, lags, or no live process holds it"
    )
    event_store: Literal["up"]
    projections: dict[str, str] = Field(
        description="each projection's status (running, rebuilding, failed, ...; "
        '"waiting: <error>" while it cannot start); {"read_store": "down"} when the read '
        "store cannot be read"
    )
    lagging: dict[str, Lagging] = Field(description="the projections that lag, by name")


class HealthUnavailable(BaseModel):
    status: Literal["unavailable"]
    event_store: Literal["down"]


class ServiceInfo(BaseModel):
    name: str
    version: str = Field(description="the service's package version")
    api_version: str
    event_store: str = Field(description="the event store's backend (no credentials)")
    group_commit: bool = Field(description="commands are committed in groups")
    workers: int


class ProjectionNotStarted(BaseModel):
    name: str
    version: int = Field(description="the projection's version in this code")
    status: Literal["not started"]


class RebuildProgress(BaseModel):
    generation: int = Field(description="the tables being filled")
    position: int | None = Field(description="how far the rebuild has read the log")


class ProjectionStanding(BaseModel):
    name: str
    version: int = Field(description="the version its tables were built by")
    code_version: int = Field(description="the version this code builds")
    generation: int = Field(description="the tables live now")
    position: int = Field(description="the last log position applied")
    head: int = Field(description="the log's last position")
    lag: int = Field(description="events stored but not yet applied")
    lag_seconds: Seconds = Field(description="how long ago the oldest such event was stored")
    status: str = Field(description="running, rebuilding, failed, ...")
    error: str | None = Field(description="why it stopped (failed)")
    error_position: int | None = Field(description="the event it could not apply")
    rebuild: RebuildProgress | None = Field(description="a rebuild under way, if any")
    worker: str | None = Field(description="the process holding it")
    holder_alive: bool = Field(description="a live process holds it (its lease runs)")
    updated_at: str


ProjectionEntry = ProjectionNotStarted | ProjectionStanding


class RebuildRequested(BaseModel):
    name: str
    status: Literal["rebuild requested"]


# -- /health/detailed ------------------------------------------------------------------------


class Probe(BaseModel):
    """A dependency's reachability: latency_ms when up, error when down."""

    status: ProbeStatus
    latency_ms: float | None = Field(default=None, description="the round trip (when up)")
    error: str | None = Field(default=None, description="what failed (when down)")


class EventStoreProbe(Probe):
    backend: str = Field(description="the event store's backend (no credentials)")
    head: int | None = Field(default=None, description="the log's last position (when up)")


class RelayLag(BaseModel):
    position: int = Field(description="the last position Kafka acknowledged")
    lag: int


class KafkaProbe(Probe):
    relays: dict[str, RelayLag] | None = Field(
        default=None, description="each relay's lag (absent when Kafka is not configured)"
    )


class ProjectionHealth(BaseModel):
    """A projection's standing (null where a projection has not started)."""

    status: str
    position: int | None
    lag: int | None
    lag_seconds: float | None
    holder_alive: bool | None
    error: str | None


class ProvidersStanding(BaseModel):
    worker_lag: int = Field(description="events not yet taken in by the provider worker")
    trainers: list[str] = Field(description="the training backends configured")
    deployers: list[str] = Field(description="the deployment targets configured")
    sources: list[str] = Field(description="the model sources configured (imports)")
    worker_in_this_process: bool
    open_jobs: int = Field(description="provider jobs not finished")
    oldest_open_job_seconds: float | None = Field(description="null: no open job")
    retrying: int = Field(description="open jobs whose last attempt failed")


class ProvidersDown(BaseModel):
    status: Literal["down"]
    error: str


class WebhooksStanding(BaseModel):
    deliverer_lag: int | None = Field(
        description="events not yet queued for the subscriptions (null: no deliverer ran yet)"
    )
    subscriptions: int
    disabled: int = Field(description="subscriptions whose deliveries are stopped")
    pending: int = Field(description="deliveries waiting to be sent or retried")
    failing: int = Field(description="deliveries waiting after a failed attempt")
    held: int = Field(description="deliveries held while their subscription is disabled")
    oldest_pending_seconds: float
    deliverer_in_this_process: bool


class DetailedHealthResponse(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="unavailable: the event store or the read store is down; degraded: a "
        "projection stopped, lags or is held by no live process, or Redis is down"
    )
    event_store: EventStoreProbe
    read_store: Probe
    redis: Probe
    kafka: KafkaProbe
    projections: dict[str, ProjectionHealth] = Field(description="by name")
    lagging: dict[str, Lagging] = Field(description="the projections that lag, by name")
    providers: ProvidersStanding | ProvidersDown
    webhooks: WebhooksStanding | ProvidersDown
