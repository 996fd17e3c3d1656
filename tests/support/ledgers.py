"""Ledgers for tests: composed from arguments only, on a fresh store."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from modelledger.bootstrap import Ledger, bootstrap
from modelledger.settings import Settings
from tests.support.auth import TEST_ADMIN_KEY


def make_ledger(url: str, **overrides: Any) -> Ledger:
    """A ledger on ``url``; settings from arguments only, never a developer's .env."""
    overrides.setdefault("tune_gc", False)  # leave the test process's collector alone
    overrides.setdefault("admin_key", TEST_ADMIN_KEY)
    return bootstrap(Settings(_env_file=None, database_url=url, **overrides))


def fresh_postgres_database(server_url: str) -> str:
    """A new empty database on the server, so every test starts from an empty log."""
    name = f"ml_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))
