"""Keys for tests: the admin key every test ledger is given, and Bearer headers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from modelledger.web import create_app

TEST_ADMIN_KEY = "test-admin-key-0123456789abcdef0123456789"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def api_client(ledger: Ledger, key: str = TEST_ADMIN_KEY) -> TestClient:
    """A client of the app on ``ledger``, acting with ``key`` (the admin's by default)."""
    return TestClient(create_app(ledger=ledger), headers=bearer(key))
