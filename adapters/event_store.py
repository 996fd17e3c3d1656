"""Chooses the event store from a database URL: eventsourcing settings for each backend."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from eventsourcing.utils import get_topic

from adapters.memory_store import LedgerMemoryFactory
from adapters.postgres_store import LedgerPostgresFactory
from adapters.sqlite_store import LedgerSQLiteFactory


class UnsupportedDatabaseUrl(ValueError):
    pass


@dataclass(frozen=True)
class StoreOptions:
    pool_size: int = 20
    max_overflow: int = 20
    aggregate_cache_size: int = 2_000
    connect_timeout_seconds: int = 5


def describe(url: str) -> str:
    """The backend's name, never the credentials in the URL."""
    return urlsplit(url).scheme.split("+")[0] or "unknown"


def eventsourcing_env(url: str, options: StoreOptions) -> dict[str, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    env = {
        # No read-before-write: a cached model is trusted, API processes drop models
        # other processes changed (ModelRegistry.forget_older), and the store's
        # optimistic concurrency catches one changed since (see commands.handlers).
        "AGGREGATE_CACHE_FASTFORWARD": "n",
    }
    if options.aggregate_cache_size > 0:  # eventsourcing reads 0 as "unbounded"
        env["AGGREGATE_CACHE_MAXSIZE"] = str(options.aggregate_cache_size)
    if scheme == "memory":
        return {**env, "PERSISTENCE_MODULE": get_topic(LedgerMemoryFactory)}
    if scheme == "sqlite":
        path = unquote(parts.path)[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise UnsupportedDatabaseUrl("a sqlite URL needs a file path: sqlite:///var/x.db")
        return {
            **env,
            "PERSISTENCE_MODULE": get_topic(LedgerSQLiteFactory),
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    if scheme in ("postgres", "postgresql"):
        return {
            **env,
            "PERSISTENCE_MODULE": get_topic(LedgerPostgresFactory),
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": str(options.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(options.max_overflow),
            "POSTGRES_CONNECT_TIMEOUT": str(options.connect_timeout_seconds),
            # No pre-ping (it doubled the round trips): eventsourcing retries a
            # command whose connection was broken by a database restart.
            "POSTGRES_PRE_PING": "n",
        }
    raise UnsupportedDatabaseUrl(
        f"unsupported database URL scheme {parts.scheme!r}: use sqlite, postgresql or memory"
    )
