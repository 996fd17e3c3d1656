"""Settings from MODELLEDGER_* environment variables and an optional .env file."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELLEDGER_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="sqlite:///path, postgresql://user:pass@host:port/db or memory://; "
        "default: a SQLite file in data_dir",
    )
    read_database_url: str | None = Field(
        default=None,
        description="where the read tables live; default: the event store's PostgreSQL "
        "database, or a SQLite file beside the event store's",
    )
    projections: bool = Field(
        default=True, description="run the projections inside `serve` (the embedded default)"
    )
    min_position_timeout: float = Field(
        default=5.0, gt=0, le=60, description="seconds a query waits for min_position"
    )
    health_max_lag_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="/health says degraded while a projection's oldest unprojected event is "
        "older than this (or no live process holds the projection)",
    )
    answer_cache_mb: int = Field(
        default=14,
        ge=0,
        le=65_536,
        description="megabytes of encoded answers each API process keeps (models by "
        "version; search, statistics and leaderboards by projection position; 0: off)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("var")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line (for a log collector)"
    )
    workers: int = Field(default=1, ge=1, le=64)
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_connect_timeout: int = Field(
        default=5, ge=1, description="seconds to wait for a PostgreSQL connection before 503"
    )
    aggregate_cache_size: int = Field(default=2_000, ge=0)
    group_commit: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    cors_origins: list[Origin] = Field(
        default=[],
        description="browser origins allowed to call the API, a JSON list such as "
        '["https://ml.example.com"]; none by default',
    )
    auth: bool = Field(
        default=True,
        description="require an API key on every route but /health; off only for local "
        "experiments (everyone is then an anonymous admin)",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="a key with the admin role, kept outside the store (its actor is 'admin')",
    )
    key_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="how long a verified key is trusted without a store read: a revocation "
        "made through another process counts within this time",
    )
    rate_limit: float = Field(
        default=100.0, ge=0, description="requests a second per key, on average (0: no limit)"
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="requests per key at once")
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db (or unix:///path): rate limits shared by every "
        "API process; default: each process counts its own",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]: where `modelledger relay` publishes"
    )
    kafka_topic: str = Field(
        default="modelledger.events", pattern=r"^[A-Za-z0-9._-]{1,249}$", description="the topic"
    )
    kafka_idempotent: bool = Field(
        default=True,
        description="the idempotent producer (no duplicates from the producer's own retries); "
        "off only for brokers without it",
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    threadpool_size: int = Field(
        default=64, ge=1, description="threads running the (synchronous) event store calls"
    )
    # -- providers: credentials are read here and never logged or recorded in events
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="enables the openai training backend",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="the OpenAI API's base URL (default: the SDK's)",
    )
    hf_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_HF_TOKEN", "HF_TOKEN"),
        description="enables the huggingface deployment target; also reads gated Hub models",
    )
    hf_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELLEDGER_HF_ENDPOINT", "HF_ENDPOINT"),
        description="the Hugging Face Hub's base URL (default: the SDK's)",
    )
    hf_endpoints_url: str | None = Field(
        default=None, description="the Inference Endpoints API's base URL (default: the SDK's)"
    )
    hf_namespace: str | None = Field(
        default=None,
        description="the user or organisation owning the endpoints (default: the token's user)",
    )
    hf_vendor: str = "aws"
    hf_region: str = "us-east-1"
    hf_accelerator: str = "cpu"
    hf_instance_size: str = "x2"
    hf_instance_type: str = "intel-icl"
    hf_undeploy: Literal["delete", "pause"] = Field(
        default="delete", description="what undeploy does to a huggingface endpoint"
    )
    datasets_dir: Path | None = Field(
        default=None,
        description="where training datasets named by a relative path are read "
        "(default: data_dir/datasets)",
    )
    provider_worker: bool = Field(
        default=True,
        description="run the provider worker inside `serve` (off when `modelledger worker` runs)",
    )
    worker_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    worker_max_pause_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="the longest wait between two checks of a job"
    )
    training_timeout_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="a provider training run still unfinished after "
        "this long is cancelled and fails",
    )
    deployment_timeout_seconds: float = Field(default=3_600.0, gt=0)
    provider_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="the longest one call to a provider may take"
    )
    access_log: bool = False
    tune_gc: bool = Field(
        default=True, description="raise the garbage collector's thresholds in `serve`"
    )

    def datasets_folder(self) -> Path:
        return self.datasets_dir or self.data_dir / "datasets"

    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelledger.sqlite').as_posix()}"
