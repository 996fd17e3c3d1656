"""The read-model database: a SQLAlchemy engine for SQLite or PostgreSQL.

By default the read tables live next to the event store: in the same
PostgreSQL database, or in a SQLite file beside the event store's file (one
SQLite file would make projection writes queue behind command writes).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from adapters.event_store import UnsupportedDatabaseUrl
from adapters.file_modes import owner_only_database

SCRATCH_PREFIX = "modelledger-read-"


@dataclass(frozen=True)
class Codecs:
    """How the read tables' JSON columns are written and read, and the SQL functions
    SQLite lacks (read_model defines them; bootstrap hands them over)."""

    json_serializer: Callable[[Any], str]
    json_deserializer: Callable[[Any], Any]
    sqlite_functions: Callable[[sqlite3.Connection], None]


def scratch_folder(url: str) -> Path | None:
    """The scratch folder of an in-memory store's read database, if ``url`` is one."""
    path = Path(urlsplit(url).path.lstrip("/")).parent
    return path if path.name.startswith(SCRATCH_PREFIX) else None


def read_store_url(store_url: str, read_url: str | None) -> str:
    """The read database's SQLAlchemy URL, derived from the event store's if not set."""
    url = read_url or store_url
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if scheme == "sqlite":
        if read_url is None:
            path = Path(unquote(parts.path)[1:] if parts.path.startswith("/") else parts.path)
            return f"sqlite:///{path.with_name(path.stem + '.read.sqlite').as_posix()}"
        return url
    if scheme == "memory":
        # The in-memory event store still needs SQL for its read model: a scratch
        # file, in shared memory where there is one (removed by Ledger.close).
        shm = Path("/dev/shm")
        folder = tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=shm if shm.is_dir() else None)
        return f"sqlite:///{folder}/read.sqlite"
    raise UnsupportedDatabaseUrl(f"unsupported read database URL scheme {parts.scheme!r}")


def create_read_engine(
    url: str,
    codecs: Codecs,
    *,
    pool_size: int = 20,
    max_overflow: int | None = None,
    connect_timeout: int = 5,
) -> Engine:
    overflow = pool_size if max_overflow is None else max_overflow
    if url.startswith("sqlite"):
        database = make_url(url).database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            owner_only_database(Path(database))  # before SQLite creates it 0644
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=overflow,
            json_serializer=codecs.json_serializer,
            json_deserializer=codecs.json_deserializer,
        )
        event.listen(engine, "connect", partial(_sqlite_pragmas, codecs.sqlite_functions))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        json_serializer=codecs.json_serializer,
        json_deserializer=codecs.json_deserializer,
        pool_size=pool_size,
        # MODELLEDGER_DB_MAX_OVERFLOW bounds this pool too: a read pool of its own size
        # again took a loaded server past PostgreSQL's max_connections (503s).
        max_overflow=overflow,
        pool_timeout=connect_timeout,
        # JIT compiling a plan can take longer than one of these queries runs: it pays off
        # only for long analytics (docs/benchmarks.md).
        connect_args={"connect_timeout": connect_timeout, "options": "-c jit=off"},
    )


def _sqlite_pragmas(
    functions: Callable[[sqlite3.Connection], None],
    dbapi_connection: sqlite3.Connection,
    _: ConnectionPoolEntry,
) -> None:
    # SQLAlchemy's recipe: let it, not the driver, begin transactions, so a
    # read is one snapshot and DDL is transactional (the blue/green swap).
    dbapi_connection.isolation_level = None
    # WAL: queries read while the projector writes. busy_timeout: writers queue.
    cursor = dbapi_connection.cursor()
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    functions(dbapi_connection)  # exact sums of metric values


def _switch_to_wal(cursor: sqlite3.Cursor, patience: float = 10.0) -> None:
    """Two processes opening a new file at the same moment: one's switch to WAL
    fails at once with "database is locked" (SQLite does not wait for this lock,
    whatever the busy timeout), so try again for a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def for_writing(engine: Engine) -> Engine:
    """The same pool, for transactions that write: on SQLite they take the write
    lock when they begin (BEGIN IMMEDIATE), so one that read first never fails
    with SQLITE_BUSY when it comes to write (the busy timeout cannot help it)."""
    return engine.execution_options(sqlite_immediate=True)


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
