"""What every projection is: a named, versioned set of read tables and one
``process_event`` per domain event type, applied a batch at a time.

eventsourcing's ``Projection``/``ProjectionRunner`` commit one event per
transaction; a rebuild of a million events needs thousands per transaction, so
a projection here works on a *batch*: ``prepare`` loads the rows the batch will
touch in one query, ``process_event`` changes them in memory, ``flush`` writes
them back in a few bulk statements. The runner commits that and the tracked
position in one transaction (exactly once).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from functools import cache, singledispatchmethod
from typing import Any, ClassVar, Protocol, cast

from sqlalchemy import JSON, Connection, Table, any_, bindparam, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from projections.kept import KeptRows
from read_model.encoding import json_text
from write_model.model import AIModel
from write_model.values import instant

# Keeps IN (...) lists under every backend's bound-parameter limit.
CHUNK = 500


class Projection(ABC):
    """One read model. Subclasses set ``name``, ``version`` and ``topics`` and
    register a ``process_event`` method per event type they read."""

    name: ClassVar[str]
    version: ClassVar[int]
    topics: ClassVar[tuple[type[Any], ...]]  # the event classes it reads

    def __init__(self, conn: Connection, generation: int) -> None:
        self.conn = conn
        self.generation = generation
        self.dialect = conn.dialect.name
        self.kept: KeptRows | None = None  # the live runner's (projections.kept)

    @classmethod
    @abstractmethod
    def create_tables(cls, conn: Connection, generation: int) -> None: ...

    @classmethod
    @abstractmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None: ...

    @classmethod
    @abstractmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        """The tables of one generation, in a stable order (verify compares them)."""

    def prepare(self, events: Sequence[tuple[int, AIModel.Event]]) -> None:  # noqa: B027
        """Load what the batch will change (default: nothing)."""

    def taken(self, ids: Iterable[str]) -> dict[str, Any]:
        """What earlier batches of this runner wrote of these models (and kept)."""
        return self.kept.take(self.generation, ids) if self.kept is not None else {}

    def keep(self) -> dict[str, Any]:
        """What to keep of the rows this batch wrote, by model (default: nothing)."""
        return {}

    @abstractmethod
    def process_event(self, event: AIModel.Event, position: int) -> None:
        """Change the batch's rows for one event. Subclasses dispatch on the event's
        type with ``singledispatchmethod``; an event they do not read changes nothing."""

    @classmethod
    @cache
    def handler(cls, event_type: type) -> Callable[[Any, Any, int], None]:
        """``process_event``'s function for an event type, looked up once: calling
        a ``singledispatchmethod`` builds a bound wrapper per call, which was a
        tenth of a rebuild's time."""
        method = inspect.getattr_static(cls, "process_event")
        if isinstance(method, singledispatchmethod):
            found: Callable[[Any, Any, int], None] = method.dispatcher.dispatch(event_type)
            return found
        return cast(Callable[[Any, Any, int], None], cls.process_event)

    @abstractmethod
    def flush(self) -> None:
        """Write the batch's changes (the runner commits them with the position)."""


class Timed(Protocol):
    @property
    def timestamp(self) -> datetime: ...


def event_time(event: Timed) -> str:
    """The sortable text form every read table uses for an instant."""
    return instant(event.timestamp)


def new_models(events: Iterable[tuple[int, Any]]) -> set[str]:
    """The models a batch creates: no table can hold a row of theirs yet."""
    return {str(event.originator_id) for _, event in events if event.originator_version == 1}


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def upsert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT for the connection's backend (both speak it)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert. On PostgreSQL through COPY: psycopg's executemany sends one
    statement per row, too slow for the pages a rebuild writes (docs/benchmarks.md);
    SQLite's executemany runs in C and is fast already."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = [c for c in table.columns if c.computed is None]
    as_json = [isinstance(c.type, JSON) for c in columns]
    names = [c.name for c in columns]
    driver = conn.connection.driver_connection
    assert driver is not None
    copy_sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(
                [
                    json_text(row[name]) if encode else row[name]
                    for name, encode in zip(names, as_json, strict=True)
                ]
            )


def one_of(conn: Connection, column: Any, keys: list[Any]) -> Any:
    """``column IN (keys)``; on PostgreSQL ``column = ANY(:keys)``: one statement text
    whatever the number of keys. An IN list renders a new text for each length, which
    psycopg then parses anew, a cost paid by every batch (docs/benchmarks.md)."""
    if conn.dialect.name == "postgresql":
        keys_param = bindparam("keys", keys, type_=postgresql.ARRAY(column.type), unique=True)
        return column == any_(keys_param)
    return column.in_(keys)


def delete_in(conn: Connection, table: Table, column: str, keys: Iterable[Any]) -> None:
    for part in chunks(keys):
        conn.execute(table.delete().where(one_of(conn, table.c[column], part)))


def select_in(
    conn: Connection, table: Table, column: str, keys: Iterable[Any], *where: Any
) -> list[Any]:
    rows: list[Any] = []
    for part in chunks(keys):
        query = table.select().where(one_of(conn, table.c[column], part), *where)
        rows.extend(conn.execute(query).all())
    return rows


def pk_tuple(table: Table) -> Any:
    return tuple_(*table.primary_key.columns)
