"""Settings from MODELLEDGER_* environment variables and an optional .env file."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, StringConstraints
from pydantic_settings import SettingsConfigDict

from modelledger.graphql_settings import GraphqlSettings

log = logging.getLogger("modelledger.settings")

# Settings that are gone, and what took their place: still set, they are ignored with a
# warning (a service never refuses to start over one).
REMOVED = {
    "MODELLEDGER_QUERY_CACHE_SIZE": "MODELLEDGER_ANSWER_CACHE_MB bounds the one answer cache",
    "MODELLEDGER_MODEL_ANSWERS_SIZE": "models' answers are kept in the answer cache "
    "(MODELLEDGER_ANSWER_CACHE_MB)",
}


def warn_removed(environ: Mapping[str, str] | None = None) -> list[str]:
    """Log a warning for each removed setting still set (in the environment or the .env
    file the settings read); the names warned about."""
    if environ is None:
        from_file = {name: value or "" for name, value in dotenv_values(".env").items()}
        environ = {**from_file, **os.environ}
    found = [name for name in REMOVED if name in environ]
    for name in found:
        log.warning("%s is no longer a setting and is ignored: %s", name, REMOVED[name])
    return found


# scheme://host[:port], as a browser sends it in Origin; "*" allows any.
Origin = Annotated[str, StringConstraints(pattern=r"^(\*|https?://[^/\s?#]+)$")]


class Settings(GraphqlSettings):
    # An empty variable is an unset one (so `OPENAI_API_KEY=` turns nothing on).
    model_config = SettingsConfigDict(
        env_prefix="MODELLEDGER_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    # Each description is the settings reference's text (docs/reference/settings.md is
    # generated from it by `make docs-reference`).

    # -- storage
    database_url: str | None = Field(
        default=None,
        description="The event store: `sqlite:///relative.sqlite`, `sqlite:////absolute.sqlite`, "
        "`postgresql://user:pass@host:5432/db` (`postgres://` also works), or `memory://` "
        "(in-process and lost on exit; each worker gets its own). Unset: "
        "`sqlite:///<DATA_DIR>/modelledger.sqlite`.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="Where the read tables (projections) live. Unset: the event store's "
        "PostgreSQL database, or `<store file>.read.sqlite` beside a SQLite store, so "
        "projection writes never queue behind command writes.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Directory for the default SQLite files and `admin.key`. `serve` creates it "
        "0700 (and takes others' rights off an existing one); the files it keeps there are "
        "0600.",
    )
    db_pool_size: int = Field(
        default=20,
        ge=1,
        description="PostgreSQL connections kept by each of a worker process's two pools (the "
        "event store's and the read tables').",
    )
    db_max_overflow: int = Field(
        default=20,
        ge=0,
        description="Extra connections each pool may open above its size. A worker may so hold "
        "up to 2 x (size + overflow): keep the sum over every process below PostgreSQL's "
        "`max_connections`, or requests get 503.",
    )
    db_connect_timeout: int = Field(
        default=5,
        ge=1,
        description="Seconds to wait for a PostgreSQL connection; past it a request gets 503.",
    )
    group_commit: bool = Field(
        default=True,
        description="Write the events of commands that arrive concurrently in one transaction "
        "(SQLite and PostgreSQL).",
    )

    # -- the HTTP server
    host: str = Field(default="127.0.0.1", description="Bind address. Use `0.0.0.0` in containers.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    workers: int = Field(default=1, ge=1, le=64, description="Number of uvicorn worker processes.")
    threadpool_size: int = Field(
        default=64,
        ge=1,
        description="Threads for the event-store calls that block: reads, idempotency look-ups "
        "and loading a model that is not cached. Commands on cached models run on the event "
        "loop and await the group commit.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest accepted request body in bytes. Larger bodies get 413.",
    )
    cors_origins: list[Origin] = Field(
        default=[],
        description="Browser origins allowed to call the API, as a JSON list "
        '(`["https://ml.example.com"]`; `"*"` for any). None by default. Every answer also '
        "carries `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, "
        "`Referrer-Policy: no-referrer` and a `Content-Security-Policy` that allows nothing "
        "(`/docs` and `/redoc`: this origin only).",
    )
    tune_gc: bool = Field(
        default=True,
        description="Freeze start-up objects and raise the garbage collector's thresholds in "
        "each worker, so collections under load are rarer and shorter.",
    )

    # -- the read side
    projections: bool = Field(
        default=True,
        description="Run the projections inside `serve` (the embedded default). Set `false` for "
        "API replicas when `modelledger project` runs them.",
    )
    min_position_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds a query waits for its projection to reach `min_position` before "
        "answering 503.",
    )
    health_max_lag_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="`/health` says `degraded` while a projection lags more than this (its "
        "lag is 0 at the log's head, else the age of the oldest event it has not projected "
        "yet), or while no live process holds it.",
    )
    answer_cache_mb: int = Field(
        default=14,
        ge=0,
        le=65_536,
        description="Megabytes of encoded answers each API process keeps, least recently used "
        "first out (0 turns it off). Three quarters are for models' answers, kept compressed, "
        "by id and version: a cached answer is given only at the version the log names. The "
        "rest is for search, statistics and leaderboard answers, by the catalogue's generation "
        "and position, so never stale for their `X-Position`. At start, once the catalogue "
        "holds the log, it is filled with the most recently changed models. "
        "`modelledger_answer_cache_lookups_total` and `modelledger_answer_cache_bytes` on "
        "`/metrics` say how it does.",
    )
    aggregate_cache_size: int = Field(
        default=2_000,
        ge=0,
        description="Models kept in each worker's in-memory cache for commands (0 turns it "
        "off); reads never use it. Each API process drops the models other processes changed "
        "as soon as it sees the log grow; a command on a model changed in between is caught by "
        "the store's version check and retried from the log.",
    )

    # -- access
    auth: bool = Field(
        default=True,
        description="Require an API key on every route but `/health` and the API docs. `false` "
        "is for local experiments only: everyone is then an admin named `anonymous`, and the "
        "service logs a warning saying so.",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="A key with the admin role (at least 32 characters) kept outside the store; "
        "its actor is `admin`. Unset, `serve` issues one into `DATA_DIR/admin.key` the first "
        "time it meets a store where no key was ever issued.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="The secret (at least 32 characters) that signs the web UI's session "
        "cookies and form tokens. Replicas behind one address share it. Unset, `serve` "
        "generates one once into `DATA_DIR/session.key` (mode 0600).",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="The Fernet key (urlsafe base64 of 32 bytes) that encrypts the secrets "
        "the log keeps, such as webhook signing secrets: the log, exports and backups hold "
        "only ciphertext. Replicas share it. Unset, `serve` generates one once into "
        "`DATA_DIR/secrets.key` (mode 0600).",
    )
    key_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a process trusts a key it verified without reading the store "
        "again. A key revoked through this process stops at once; through another process, "
        "within this time (0: read the store on every request).",
    )
    rate_limit: float = Field(
        default=100.0,
        ge=0,
        description="Requests a second per key, on average (0: no limit). Over it: 429 with "
        "`Retry-After`. Failed authentications count against the client address.",
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="Requests per key at once.")
    redis_url: str | None = Field(
        default=None,
        description="`redis://host:6379/0` (or `unix:///path`): rate limits are counted in "
        "Redis, so every API process shares one allowance per key, and projection workers "
        "announce each commit there, so `min_position` waits wake at once (without it, within "
        "0.1 s). While Redis cannot be reached each process counts on its own and logs a "
        "warning; it uses Redis again when it is back.",
    )

    # -- the Kafka relay
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="`host:9092[,host:9092]`: the brokers `modelledger relay` publishes to "
        "(also probed by `/health/detailed`).",
    )
    kafka_topic: str = Field(
        default="modelledger.events",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="The topic; the relay creates it (6 partitions) when the cluster lacks it.",
    )
    kafka_idempotent: bool = Field(
        default=True,
        description="The idempotent producer (`acks=all` either way). Turn it off only for a "
        "broker without `InitProducerId`.",
    )
    relay_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Events per batch: Kafka acknowledges a batch before the relay records "
        "its position.",
    )

    # -- providers: credentials are read here and never logged or recorded in events
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="Enables the `openai` training backend. Never logged, never in an event.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="The OpenAI API's address (a proxy, a compatible service). Unset: the SDK's.",
    )
    hf_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_HF_TOKEN", "HF_TOKEN"),
        description="Enables the `huggingface` deployment target; also lets the importer read "
        "gated and private models the token may see. Never logged, never in an event.",
    )
    hf_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_HF_ENDPOINT", "HF_ENDPOINT"),
        description="The Hugging Face Hub's address (a mirror, a private Hub). Unset: the SDK's.",
    )
    hf_endpoints_url: str | None = Field(
        default=None,
        description="The Inference Endpoints API's address. Unset: the SDK's.",
    )
    hf_namespace: str | None = Field(
        default=None,
        description="The user or organisation that owns the endpoints. Unset: the token's user.",
    )
    hf_vendor: str = Field(default="aws", description="The cloud new endpoints run on.")
    hf_region: str = Field(default="us-east-1", description="The region of new endpoints.")
    hf_accelerator: str = Field(default="cpu", description="The accelerator of new endpoints.")
    hf_instance_size: str = Field(default="x2", description="The instance size of new endpoints.")
    hf_instance_type: str = Field(
        default="intel-icl", description="The instance type of new endpoints."
    )
    hf_undeploy: Literal["delete", "pause"] = Field(
        default="delete", description="What undeploy does to a `huggingface` endpoint."
    )
    datasets_dir: Path | None = Field(
        default=None,
        description="Where the `openai` backend reads a dataset given as a relative path; "
        "nothing outside it is ever read. Unset: `<DATA_DIR>/datasets`.",
    )
    provider_worker: bool = Field(
        default=True,
        description="Run the provider worker inside `serve` (the embedded default). Set `false` "
        "on API replicas when `modelledger worker` runs.",
    )
    worker_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long a worker holds a job while it calls the provider. A worker that "
        "dies on another host is replaced after this; one that died on the same host (a "
        "restart), at once.",
    )
    worker_max_pause_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="The longest wait between two checks of a job (the wait starts at 2 s and "
        "doubles).",
    )
    training_timeout_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="A provider training run still unfinished this long after it started is "
        "cancelled at the provider and fails.",
    )
    deployment_timeout_seconds: float = Field(
        default=3_600.0,
        gt=0,
        description="A deployment request to a provider still unfinished this long after it "
        "was made fails.",
    )
    provider_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="The longest one call to a provider may take."
    )

    # -- webhooks
    webhooks: bool = Field(
        default=True,
        description="Run the webhook deliverer inside `serve` (the embedded default). Set "
        "`false` on API replicas when `modelledger deliver` runs.",
    )
    webhooks_retry_schedule: str = Field(
        default="0,5,300,1800,7200,18000,36000,50400,72000,86400",
        pattern=r"^\s*\d+(\.\d+)?\s*(,\s*\d+(\.\d+)?\s*)*$",
        description="Seconds to wait before each attempt of a delivery (Standard Webhooks' "
        "schedule, each wait stretched by up to a tenth at random). A delivery failing past "
        "the last disables its subscription.",
    )
    webhooks_log_days: float = Field(
        default=30.0, gt=0, description="How long finished deliveries and their attempts are kept."
    )
    webhooks_timeout_seconds: float = Field(
        default=15.0, gt=0, le=300, description="The longest one delivery attempt may take."
    )
    webhooks_allow_private_targets: bool = Field(
        default=False,
        description="Allow deliveries to loopback, private and link-local addresses "
        "(`localhost` included): for development and tests only.",
    )
    webhooks_secret_overlap_seconds: float = Field(
        default=86_400.0,
        ge=0,
        description="How long a rotated-out signing secret still signs deliveries.",
    )

    # -- logs
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="The lowest level logged."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: every log line (ours, uvicorn's, the libraries') is one JSON object "
        "with `timestamp`, `level`, `logger`, `event` and, within a request, its "
        "`correlation_id` (the caller's `X-Correlation-ID`, else a new one; every answer names "
        "it, and every event it causes records it).",
    )
    access_log: bool = Field(
        default=False,
        description="One log line per request: method, route template, status, milliseconds, "
        "correlation id.",
    )

    def datasets_folder(self) -> Path:
        return self.datasets_dir or self.data_dir / "datasets"

    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelledger.sqlite').as_posix()}"
