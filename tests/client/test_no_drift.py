"""The client and the server cannot drift apart unnoticed: the client's paths and models
are checked against the server's OpenAPI document, every problem type the server sends
has its exception, and the synchronous client is what unasync makes of the async one."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from api.errors import KINDS
from modelledger.web import create_app
from modelledger_client import errors, routes
from modelledger_client.models import EVERY_ANSWER
from tests.support.ledgers import make_ledger

CLIENT = Path(__file__).parents[2] / "clients" / "python"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    ledger = make_ledger("memory://")
    try:
        document: dict[str, Any] = create_app(ledger=ledger).openapi()
        return document
    finally:
        ledger.close()


def test_every_path_the_client_calls_is_served(openapi: dict[str, Any]) -> None:
    missing = [
        (method, path)
        for method, path in routes.CALLED
        if method.lower() not in openapi["paths"].get(path, {})
    ]
    assert missing == []


def test_every_field_the_client_reads_is_in_the_servers_schema(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for answer in EVERY_ANSWER:
        assert answer.SCHEMA in schemas, f"{answer.__name__}: no schema {answer.SCHEMA}"
        server = schemas[answer.SCHEMA]
        served, required = set(server.get("properties", {})), set(server.get("required", []))
        read = {name for name, field in answer.model_fields.items() if field.is_required()}
        read -= answer.SENT_BY_ITS_ROUTE
        # What the client requires, the server always sends; what it reads at all exists.
        assert read <= required, f"{answer.__name__} requires {read - required}"
        assert set(answer.model_fields) - {"model_id", "metric", "key_id"} <= served, (
            f"{answer.__name__} reads {set(answer.model_fields) - served}"
        )


def test_every_problem_type_has_its_exception() -> None:
    generic = {"method-not-allowed", "internal-error"}  # (a client bug, a server bug)
    for kind in KINDS:
        raised = errors.error_for(kind.status, {"type": kind.type, "status": kind.status})
        assert isinstance(raised, errors.ModelLedgerError)
        assert (type(raised) is errors.ModelLedgerError) == (kind.name in generic), kind.name


def test_the_sync_client_is_generated_from_the_async_one(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_sync", CLIENT / "generate_sync.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    written = generator.generate(tmp_path)
    committed = CLIENT / "src" / "modelledger_client" / "_sync"
    assert sorted(p.name for p in written) == sorted(p.name for p in committed.glob("*.py"))
    for path in written:
        assert path.read_text() == (committed / path.name).read_text(), (
            f"_sync/{path.name} is stale: run .venv/bin/python clients/python/generate_sync.py"
        )
