"""The client's stories run against a real `modelledger serve` (SQLite, and PostgreSQL
where the story says so), started here as a user runs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ledgers import fresh_postgres_database
from tests.support.processes import ApiProcess, serving


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """`serve` on each store: SQLite (the default), PostgreSQL."""
    settings = {}
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        settings["MODELLEDGER_DATABASE_URL"] = fresh_postgres_database(pg)
    with serving(tmp_path_factory.mktemp(f"client-{request.param}"), **settings) as api:
        yield api


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with serving(tmp_path_factory.mktemp("client-sqlite")) as api:
        yield api
