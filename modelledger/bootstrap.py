"""The composition root: the only place that picks concrete adapters.

``bootstrap`` builds what every ModelLedger process holds (a ``Ledger``); the HTTP
process's own parts (keys, rate limits, metrics, its follower) are composed from it in
modelledger/web.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from adapters.event_store import StoreOptions, describe, eventsourcing_env
from adapters.group_commit import GroupCommitMixin
from adapters.read_store import (
    Codecs,
    create_read_engine,
    for_writing,
    read_store_url,
    scratch_folder,
)
from adapters.secret_box import SecretBox
from commands.ports import ModelSource, Providers, SourceModel
from commands.registry import ModelRegistry
from modelledger.kept_secrets import secrets_key
from modelledger.settings import Settings
from processes.provider_worker import ProviderWorker, WorkerOptions
from processes.webhooks.deliverer import Deliverer, DelivererOptions
from processes.webhooks.schedule import parse_schedule
from projections.worker import ProjectionWorker, worker_identity
from queries.answers import AnswerCache
from queries.catalogue_reader import CatalogueReader
from queries.model_reader import ModelReader
from queries.ports import EventLog
from queries.positions import Positions
from queries.tables import ReadTables
from queries.visibility import ModelProjects
from read_model.encoding import json_text, json_value
from read_model.exact import register_sqlite_functions

if TYPE_CHECKING:  # imported where used: only a process given a Redis URL loads the client
    from redis import Redis

    from adapters.redis_positions import PositionPublisher, PositionSubscriber


def connect_providers(settings: Settings) -> Providers:
    """One adapter per provider whose credentials are set (the Hub's public models need none)."""
    providers = Providers()
    timeout = settings.provider_timeout_seconds
    if settings.openai_api_key is not None:
        # Imported only when configured: the SDK is slow to import, a cost paid by every
        # process start (the CLI's included) that never calls it.
        from adapters.openai_trainer import OpenAITrainer

        providers.trainers["openai"] = OpenAITrainer(
            settings.openai_api_key.get_secret_value(),
            settings.datasets_folder(),
            base_url=settings.openai_base_url,
            timeout_seconds=timeout,
        )
    token = settings.hf_token.get_secret_value() if settings.hf_token else None

    def hub_source() -> ModelSource:
        from adapters.huggingface import HubSource

        return HubSource(settings.hf_endpoint, token, timeout)

    providers.sources["huggingface"] = SourceOnFirstUse("huggingface", hub_source)
    if token is not None:
        from adapters.huggingface import HubEndpoints

        providers.deployers["huggingface"] = HubEndpoints(
            settings.hf_endpoint,
            token,
            namespace=settings.hf_namespace,
            compute={
                "vendor": settings.hf_vendor,
                "region": settings.hf_region,
                "accelerator": settings.hf_accelerator,
                "instance_size": settings.hf_instance_size,
                "instance_type": settings.hf_instance_type,
            },
            undeploy=settings.hf_undeploy,
            endpoints_url=settings.hf_endpoints_url,
            timeout=timeout,
        )
    return providers


@dataclass
class Ledger:
    """Everything a running ModelLedger process holds."""

    settings: Settings
    registry: ModelRegistry
    event_log: EventLog
    backend: str
    read_engine: Engine
    tables: ReadTables
    catalogue: CatalogueReader
    models: ModelReader
    model_projects: ModelProjects
    redis: Redis | None = None  # position announcements
    publisher: PositionPublisher | None = None
    worker: ProjectionWorker | None = None
    subscriber: PositionSubscriber | None = None
    providers: Providers = field(default_factory=Providers)
    provider_worker: ProviderWorker | None = None

    @property
    def write_engine(self) -> Engine:
        """The read database, for the projections' own (writing) transactions."""
        return for_writing(self.read_engine)

    @property
    def positions(self) -> Positions:
        return self.tables.positions

    @property
    def answers(self) -> AnswerCache:
        return self.tables.answers

    def start_projections(self) -> ProjectionWorker:
        """Run every projection in this process (embedded default, or `project`)."""
        if self.worker is None:
            self.worker = ProjectionWorker(
                self.write_engine, self.event_log, on_commit=self._committed
            )
            self.worker.start()
        return self.worker

    def start_provider_worker(self, options: WorkerOptions | None = None) -> ProviderWorker:
        """Carry out provider training runs and deployments (`serve`, or `worker`)."""
        if self.provider_worker is None:
            s = self.settings
            self.provider_worker = ProviderWorker(
                self.registry,
                self.write_engine,
                owner=worker_identity(),
                trainers=self.providers.trainers,
                deployers=self.providers.deployers,
                options=options
                or WorkerOptions(
                    lease_seconds=s.worker_lease_seconds,
                    max_pause_seconds=s.worker_max_pause_seconds,
                    training_timeout_seconds=s.training_timeout_seconds,
                    deployment_timeout_seconds=s.deployment_timeout_seconds,
                ),
            ).start()
        return self.provider_worker

    def sealer(self) -> SecretBox:
        """Seals and opens the secrets the log keeps (MODELLEDGER_SECRETS_KEY)."""
        return SecretBox(secrets_key(self.settings))

    def webhook_deliverer(self) -> Deliverer:
        """The webhook deliverer (`serve`, or `deliver`): ``await run()`` it."""
        from adapters.webhook_http import HttpEndpoints

        s = self.settings
        endpoints = HttpEndpoints(s.webhooks_timeout_seconds, s.webhooks_allow_private_targets)
        options = DelivererOptions(
            schedule=parse_schedule(s.webhooks_retry_schedule),
            log_days=s.webhooks_log_days,
            lease_seconds=s.webhooks_timeout_seconds + 30,
        )
        return Deliverer(self.registry, self.write_engine, endpoints, self.sealer(), options)

    def _committed(self, projection: str, generation: int, position: int) -> None:
        self.positions.reached(projection, generation, position)
        if self.publisher is not None:  # wakes other processes' read-your-writes waits
            self.publisher(projection, generation, position)

    def follow_announcements(self) -> PositionSubscriber | None:
        """Hear the workers' commits (through Redis), so waits wake without polling."""
        if self.redis is not None and self.subscriber is None:
            from adapters.redis_positions import PositionSubscriber

            self.subscriber = PositionSubscriber(self.redis, self.positions.reached).start()
        return self.subscriber

    def stop_following_announcements(self) -> None:
        if self.subscriber is not None:
            self.subscriber.stop()
            self.subscriber = None

    def stop_projections(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def log_head(self) -> int:
        return self.event_log.head()

    def close(self) -> None:
        if self.provider_worker is not None:
            self.provider_worker.stop()
            self.provider_worker = None
        self.stop_projections()
        if isinstance(self.registry.recorder, GroupCommitMixin):
            self.registry.recorder.stop_group_commit()
        self.registry.close()
        self.read_engine.dispose()
        self.stop_following_announcements()
        if self.redis is not None:
            self.redis.close()
        scratch = scratch_folder(str(self.read_engine.url))
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def bootstrap(settings: Settings | None = None) -> Ledger:
    settings = settings or Settings()
    url = settings.store_url()
    options = StoreOptions(
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        aggregate_cache_size=settings.aggregate_cache_size,
        connect_timeout_seconds=settings.db_connect_timeout,
    )
    registry = ModelRegistry(env=eventsourcing_env(url, options))
    if isinstance(registry.recorder, GroupCommitMixin):
        registry.recorder.group_commit_enabled = settings.group_commit
    event_log = EventLog(registry.recorder, registry.mapper, registry.doorbells)
    read_engine = create_read_engine(
        read_store_url(url, settings.read_database_url),
        Codecs(json_text, json_value, register_sqlite_functions),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        connect_timeout=settings.db_connect_timeout,
    )
    tables = ReadTables(
        read_engine,
        Positions(),
        AnswerCache(settings.answer_cache_mb * 2**20),
        settings.min_position_timeout,
        event_log.head,
    )
    model_projects = ModelProjects(event_log)
    shared = publisher = None
    if settings.redis_url:
        from adapters.redis_clients import connect_redis
        from adapters.redis_positions import PositionPublisher

        shared = connect_redis(settings.redis_url)
        publisher = PositionPublisher(shared)
    return Ledger(
        settings=settings,
        registry=registry,
        event_log=event_log,
        backend=describe(url),
        read_engine=read_engine,
        tables=tables,
        catalogue=CatalogueReader(tables),
        models=ModelReader(tables, event_log, model_projects),
        model_projects=model_projects,
        redis=shared,
        publisher=publisher,
        providers=connect_providers(settings),
    )


class SourceOnFirstUse:
    """A model source built on its first fetch: the Hub's SDK costs every process memory
    and start-up time to import (docs/benchmarks.md), and few ever import a model."""

    def __init__(self, name: str, build: Callable[[], ModelSource]) -> None:
        self.name = name
        self._build = build
        self._source: ModelSource | None = None

    def fetch(self, repo_id: str, revision: str | None = None) -> SourceModel:
        if self._source is None:  # (two first fetches may both build it: harmless)
            self._source = self._build()
        return self._source.fetch(repo_id, revision)


__all__ = ["Ledger", "bootstrap"]
