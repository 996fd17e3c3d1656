"""The write side's ports: what commands need from the event store beyond the library's
recorder (group commit, idempotency records, a model's last change), and from the systems
that train, serve and publish models (OpenAI, the Hugging Face Hub).


Each provider port is what ModelLedger needs from such a system, in the registry's words;
adapters/ holds one implementation per provider. The built-in "external" backend
and target need no port: their results are reported through the API.

Two errors cross every port: ``ProviderRejected`` (the provider said no for good:
a bad request, no quota, a job that failed) ends the run or request with the
provider's reason; ``ProviderUnavailable`` (down, overloaded, timed out) is
retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent


class StoreUnavailable(Exception):
    """The event store cannot be reached; the command may be retried."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field: str | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    """Kept with a command's events, in their transaction: a crash never leaves events
    without their key, or a key without its events."""

    key: str
    fingerprint: str
    model_id: str
    model_version: int
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredResponse:
    """A first response as it is replayed, with the position of its last event."""

    record: IdempotencyRecord
    position: int | None


class LogPages(Protocol):
    """What an export needs of the read-only log (queries.ports.EventLog is it)."""

    def head(self) -> int: ...

    def page(
        self, after: int, limit: int, *, until: int | None = None, topics: Sequence[str] = ()
    ) -> Sequence[Notification]: ...


class StoreRecorder(Protocol):
    """What our recorders (SQLite, PostgreSQL, memory) add to eventsourcing's for commands."""

    def submit(
        self, stored_events: Sequence[StoredEvent], idempotency: Sequence[IdempotencyRecord]
    ) -> Future[Sequence[int]]: ...

    def find_idempotency(self, key: str) -> StoredResponse | None: ...

    def select_history(self, originator_id: UUID) -> list[tuple[int, StoredEvent]]: ...

    def ping(self) -> None: ...


class ProviderError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderRejected(ProviderError):
    """Permanent: retrying the same call cannot succeed."""


class ProviderUnavailable(ProviderError):
    """Transient: the same call may succeed later."""


class SourceModelNotFound(ProviderRejected):
    """The source has no such model (or does not show it to our token)."""


@dataclass(frozen=True)
class TrainingJob:
    """One run for a trainer: ``run_id`` names the job at the provider, so a worker that
    restarts between submitting and recording finds the job instead of starting another."""

    run_id: str
    model_name: str
    dataset: str
    base_model: str
    hyperparameters: dict[str, Any]


@dataclass(frozen=True)
class JobProgress:
    state: Literal["running", "succeeded", "failed"]
    metrics: dict[str, float] = field(default_factory=dict)
    output_model: str | None = None  # the trained model's name at the provider
    artifact_uri: str | None = None
    reason: str = ""  # why it failed, in the provider's words
    detail: str = ""  # where it is (queued, step 40 of 90...), for the log


class Trainer(Protocol):
    name: str

    def submit(self, job: TrainingJob) -> str:
        """Start the job (or find the one already started for ``job.run_id``): its id."""

    def progress(self, job_id: str) -> JobProgress: ...

    def cancel(self, job_id: str) -> None: ...


@dataclass(frozen=True)
class EndpointSpec:
    """What one environment of one model should serve."""

    name: str  # the provider's endpoint name, stable per (model, environment)
    repository: str  # where the provider reads the weights (a Hub repository)
    revision: str | None
    task: str
    framework: str


@dataclass(frozen=True)
class EndpointProgress:
    state: Literal["pending", "running", "failed", "gone"]
    url: str | None = None
    reason: str = ""


class Deployer(Protocol):
    name: str

    def endpoint_name(self, model_id: str, environment: str) -> str:
        """The endpoint of one environment of one model: stable, and unique per pair."""

    def deploy(self, spec: EndpointSpec) -> None:
        """Create the endpoint, or point the existing one at ``spec``'s weights."""

    def progress(self, endpoint_name: str, spec: EndpointSpec) -> EndpointProgress:
        """ "running" only once the endpoint serves ``spec``'s weights."""

    def release(self, endpoint_name: str) -> EndpointProgress:
        """Take the endpoint down (delete or pause, as configured); "gone" when done."""


@dataclass(frozen=True)
class EvaluationResult:
    metric: str
    value: float
    dataset: str


@dataclass(frozen=True)
class SourceModel:
    """A model as its source describes it (a Hub repository and its card)."""

    repo_id: str
    revision: str
    task: str
    framework: str
    tags: list[str]
    license: str | None
    base_model: str | None
    description: str
    evaluations: list[EvaluationResult]
    url: str


class ModelSource(Protocol):
    name: str

    def fetch(self, repo_id: str, revision: str | None = None) -> SourceModel: ...


@dataclass(frozen=True)
class MlflowRun:
    """The run an MLflow model version came from, as MLflow keeps it."""

    run_id: str
    deleted: bool  # its lifecycle stage is "deleted": MLflow may purge it at any time
    metrics: dict[str, float]  # each metric's latest value (NaN and infinities as MLflow has them)
    params: dict[str, str]
    dataset: str | None  # the name of the first dataset it logged as an input, if any
    user_id: str


@dataclass(frozen=True)
class MlflowVersion:
    """A model version in MLflow's registry (times in milliseconds since the epoch)."""

    version: int
    created_ms: int
    updated_ms: int
    description: str
    tags: dict[str, str]
    source: str  # where its artifacts are (runs:/..., s3://..., models:/...)
    run_id: str  # "" when it was registered from a path, with no run
    user_id: str
    stage: str  # the legacy stage: None, Staging, Production or Archived
    status: str  # READY, PENDING_REGISTRATION or FAILED_REGISTRATION
    run: MlflowRun | None  # None: no run, or MLflow no longer has it


@dataclass(frozen=True)
class MlflowModel:
    """A registered model in MLflow's registry, with its versions in version order."""

    name: str
    created_ms: int
    updated_ms: int
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]  # alias -> the version number it points to
    versions: tuple[MlflowVersion, ...]


class MlflowRegistry(Protocol):
    """An MLflow model registry to import: a live server or an export directory.
    ``tick(what, n)`` says ``n`` more of ``what`` (models, versions, runs) were read."""

    where: str  # the server's URL or the directory: the registry's identity

    def read(self, tick: Callable[[str, int], None]) -> list[MlflowModel]: ...

    def gone(self, names: list[str]) -> set[str]:
        """Of these registered models, those MLflow says no longer exist (not merely
        hidden from this reader); an export directory cannot tell: none."""
        ...


@dataclass
class Providers:
    """The systems that train, serve and publish models, by the name requests use."""

    trainers: dict[str, Trainer] = field(default_factory=dict)
    deployers: dict[str, Deployer] = field(default_factory=dict)
    sources: dict[str, ModelSource] = field(default_factory=dict)


# -- publishing the log's events outward (the Kafka relay) ---------------------------------


Message = tuple[bytes, bytes]  # (key, value)


class PublishFailed(Exception):
    """The outside system did not take a batch (down, refused, timed out): send it again."""


class Publisher(Protocol):
    """Where a follower of the log publishes what it reads (adapters/kafka.py is one)."""

    @property
    def destination(self) -> str: ...

    async def open(self) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Return once every message is acknowledged; else raise ``PublishFailed``."""

    async def close(self) -> None: ...


class SecretUnreadable(Exception):
    """Sealed under another key than this process's (or damaged)."""


class Sealer(Protocol):
    """Keeps a secret the log must hold but never show (adapters/secret_box.py); ``open``
    raises ``SecretUnreadable``."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class DeliveryQueue(Protocol):
    """What an admin asks of the webhook deliverer's queue (processes/webhooks/queue.py):
    its answers are delivery ids, or None for a delivery it does not hold."""

    def queue_test(self, webhook_id: str, actor: str) -> str: ...

    def redeliver(self, webhook_id: str, delivery_id: str, held: bool) -> str | None: ...

    def replay(self, webhook_id: str, after: int, until: int, head: int) -> str: ...


@dataclass(frozen=True)
class EndpointAnswer:
    """What one delivery attempt got: the status (None: no answer), how long it took, the
    start of the answer, why it failed, and a Retry-After in seconds if one was sent."""

    status: int | None
    latency_ms: float
    excerpt: str = ""
    error: str | None = None
    retry_after: float | None = None


class Endpoints(Protocol):
    """Posts a signed delivery to a subscriber's URL (adapters/webhook_http.py): never
    following a redirect, and never to an address it must not reach."""

    async def post(
        self, subscription: str, url: str, headers: dict[str, str], body: bytes
    ) -> EndpointAnswer: ...

    async def forget(self, subscription: str) -> None:
        """Close what was kept for a subscription that is gone."""

    async def close(self) -> None: ...
