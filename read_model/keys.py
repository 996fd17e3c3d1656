"""The keys read table: every API key issued, for the admins' list (never a secret)."""

from __future__ import annotations

from functools import cache

from sqlalchemy import JSON, BigInteger, Column, MetaData, String, Table

from read_model.tables import SORTABLE, generation_name

KEYS_VERSION = 1


@cache
def keys_table(generation: int) -> Table:
    return Table(
        generation_name("api_keys", generation),
        MetaData(),
        Column("key_id", SORTABLE, primary_key=True),
        Column("name", SORTABLE, nullable=False),
        Column("role", String(16), nullable=False),
        Column("projects", JSON),  # null: every project
        Column("issued_at", String(40), nullable=False),
        Column("issued_by", String, nullable=False),
        Column("revoked_at", String(40)),
        Column("revoked_by", String),
        Column("position", BigInteger, nullable=False),
    )
