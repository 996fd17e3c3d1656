"""The connection settings bound every pool a process opens: a loaded server must stay within
PostgreSQL's max_connections (a read pool that ignored them answered 503s under load)."""

from __future__ import annotations

from typing import Any

from tests.support.ledgers import make_ledger


def test_the_read_pool_keeps_to_the_pool_size_and_overflow_settings(store_url: str) -> None:
    ledger = make_ledger(store_url, db_pool_size=3, db_max_overflow=0)
    try:
        pool: Any = ledger.read_engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 0)
    finally:
        ledger.close()
