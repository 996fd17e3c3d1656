"""Fixtures of the integration stories."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.support.ledgers import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """An empty store per call (one per hypothesis example): a new SQLite file, or the
    test's PostgreSQL database with its schema dropped and created again (faster than
    a new database)."""
    if request.param == "sqlite":
        numbers = itertools.count()
        return lambda: f"sqlite:///{tmp_path / f'store-{next(numbers)}' / 'ledger.sqlite'}"
    url = fresh_postgres_database(request.getfixturevalue("postgres_server"))

    def emptied() -> str:
        # (the previous example's ledger is closed: nothing holds a lock)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return url

    return emptied
