"""What a browser is told: security headers on every answer (errors too), and
cross-origin calls only from the origins the settings name (none by default)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.auth import api_client
from tests.support.ledgers import make_ledger

ALLOWED = "https://ml.example.com"


@pytest.fixture
def cors_client() -> Iterator[TestClient]:
    ledger = make_ledger("memory://", cors_origins=[ALLOWED])
    try:
        with api_client(ledger) as client:
            yield client
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health", None, 200),
        ("GET", "/api/v1/models/statistics", None, 200),
        ("GET", "/api/v1/models/not-a-uuid", None, 422),
        ("POST", "/api/v1/models", {"name": ""}, 422),
        ("POST", "/api/v1/models", "x" * 2_000_000, 413),
    ],
)
def test_every_answer_carries_the_security_headers(
    memory_client: TestClient, method: str, path: str, body: object, status: int
) -> None:
    # When anything is asked, however it ends
    content = body if isinstance(body, str) else None
    json = None if isinstance(body, str) else body
    response = memory_client.request(method, path, content=content, json=json)
    # Then the answer forbids sniffing, framing, referrers and any active content
    assert response.status_code == status, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_interactive_docs_may_load_from_this_origin_only(memory_client: TestClient) -> None:
    # (tests/e2e/test_api_docs.py loads them in a browser)
    response = memory_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self';")
    assert response.headers["x-frame-options"] == "DENY"


def test_no_origin_is_allowed_by_default(memory_client: TestClient) -> None:
    # Given the default settings, when a page on some origin calls the API
    response = memory_client.get("/health", headers={"Origin": ALLOWED})
    preflight = memory_client.options(
        "/api/v1/models",
        headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
    )
    # Then the browser is not told it may read the answer
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_a_named_origin_may_call_and_read_and_no_other(cors_client: TestClient) -> None:
    # Given MODELLEDGER_CORS_ORIGINS names one origin
    # When that origin asks before a command, and then reads
    preflight = cors_client.options(
        "/api/v1/models",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Idempotency-Key",
        },
    )
    read = cors_client.get("/api/v1/models/statistics", headers={"Origin": ALLOWED})
    # Then it may, and sees the headers the API's clients use
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert read.headers["access-control-allow-origin"] == ALLOWED
    assert "X-Position" in read.headers["access-control-expose-headers"]
    # and another origin may not
    other = cors_client.options(
        "/api/v1/models",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
