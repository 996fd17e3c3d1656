"""The composition root: the only place that picks concrete adapters."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.event_store import StoreOptions, describe, eventsourcing_env
from adapters.group_commit import GroupCommitMixin
from commands.registry import ModelRegistry
from modelledger.settings import Settings


@dataclass
class Ledger:
    """Everything a running ModelLedger process holds."""

    settings: Settings
    registry: ModelRegistry
    backend: str

    def close(self) -> None:
        if isinstance(self.registry.recorder, GroupCommitMixin):
            self.registry.recorder.stop_group_commit()
        self.registry.close()


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
    return Ledger(settings=settings, registry=registry, backend=describe(url))
