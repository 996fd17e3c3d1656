"""Fixtures of the bad-input stories."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.e2e.problems import (
    Subject,
    create_model,
    start_training,
)
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger
from tests.support.processes import ApiProcess, serving


@pytest.fixture
def subject(memory_client: TestClient) -> Subject:
    model_id = create_model(memory_client)
    return Subject(model_id, start_training(memory_client, model_id))


@pytest.fixture
def capped_client() -> Iterator[TestClient]:
    """An app whose body cap is 2 KiB."""
    ledger = make_ledger("memory://", max_body_bytes=2048)
    with api_client(ledger) as test_client:
        yield test_client
    ledger.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """`modelledger serve` as a user runs it (uvicorn, real HTTP), shared by the stories
    that need the real server: its own data directory, the test admin key, no rate limit."""
    with serving(tmp_path_factory.mktemp("served")) as api:
        yield api


@pytest.fixture
def admin() -> Iterator[TestClient]:
    """The web UI's stories: an app on an in-memory store, the test admin key, no rate
    limit (a story signs in and posts many forms)."""
    ledger = make_ledger("memory://", rate_limit=0)
    with api_client(ledger) as client:
        yield client
    ledger.close()
