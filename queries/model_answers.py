"""Every model's answer to "get one model", held by each API process and kept current
from the catalogue's rows, so that a read of one model is a look-up on the event loop.

Reads by id spread over the whole catalogue miss any answer cache of practical size,
and each miss cost two queries in a thread: 3x MLflow's throughput, where the other
reads were 70x and more (bench.vs_mlflow). Here the catalogue's changes are followed
instead: each row carries the position of its model's last event, so after reading
where the catalogue stands (P), the rows past the last position taken are read and
rendered. The answers are then at least as new as P, as a read of the tables at P
would be (the rule of queries.reading), and one is given only when it is at the model's
last version in the log (api.queries asks the log first): a read never misses a command
on the model acknowledged before it, whichever process took the command.
"""

from __future__ import annotations

import threading
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Select, Text, cast, select

from queries.catalogue import MODEL_COLUMNS, catalogue_view
from read_model.encoding import json_kept, json_value
from read_model.state import read_state
from read_model.tables import CATALOGUE_VERSION, catalogue_tables

LOAD_BATCH = 2000


class ModelAnswer:
    """A model's catalogue row as read, its JSON columns still text, rendered on the
    first get: under a stream of writes each API process rendered every changed model
    at each change, read or not (a tenth of an API process's time, py-spy)."""

    __slots__ = ("_body", "_row", "project", "version")

    def __init__(self, row: Any) -> None:
        self.project: str = row.project  # who may see it: checked per request
        self.version: int = row.version  # the ETag
        self._row: Any = row
        self._body: bytes | None = None

    @classmethod
    def rendered(cls, row: Any) -> ModelAnswer:
        """Rendered now: a row held as read takes half as much again as its answer
        (1.6 against 1.1 KB for a trained model, tracemalloc)."""
        answer = cls(row)
        answer.body  # noqa: B018
        return answer

    @property
    def body(self) -> bytes:
        row, body = self._row, self._body  # in this order: the body is set first
        if body is None:
            body = json_kept(catalogue_view(_decoded(row)))
            self._body = body
            self._row = None
        return body


def _decoded(row: Any) -> Any:  # read as a Row is (catalogue_view)
    fields = dict(row._mapping)
    for name in _json_columns() & fields.keys():
        fields[name] = json_value(fields[name])
    return SimpleNamespace(**fields)


@cache
def _json_columns() -> frozenset[str]:
    """The catalogue's JSON columns (their type is the same in every generation)."""
    models = catalogue_tables(1, "sqlite").models
    return frozenset(c.name for c in models.c if isinstance(c.type, JSON))


class ModelAnswers:
    """Up to ``capacity`` models' answers (about 1 KB each; 0: off). Models beyond it,
    and any id not held, are read from the tables as before."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.generation: int | None = None
        self.position = -1
        self.entries: dict[str, ModelAnswer] = {}
        self.hits = 0
        self.misses = 0
        self._following = threading.Lock()

    def answer(
        self, model_id: str, version: int, at_least: int = 0
    ) -> tuple[ModelAnswer, int] | None:
        """The model's answer and a position it is at least as new as, if held at
        ``version`` (the model's last in the log: then it reflects every command on
        the model) and at or past ``at_least``; else None: ask the tables or the log."""
        # The position first: entries are replaced before it moves, so the entry read
        # after it is at least that new.
        generation, position = self.generation, self.position
        found = None
        if generation is not None and position >= at_least:
            found = self.entries.get(model_id)
        if found is None or found.version != version:
            self.misses += 1
            return None
        self.hits += 1
        return found, position

    def behind(self, generation: int, position: int) -> bool:
        """Whether the catalogue was seen past what is held."""
        return generation != self.generation or position > self.position

    def follow(self, engine: Engine) -> None:
        """Take in the catalogue's changes since the last call (blocking: in a thread)."""
        if self.capacity == 0:
            return
        # A transaction (not for_reading's autocommit): PostgreSQL streams a large load
        # only through a server-side cursor, which lives in one.
        with self._following, engine.connect() as conn:
            state = read_state(conn, "catalogue")
            if state is None or state.version != CATALOGUE_VERSION:
                self.generation = None  # being built: nothing held is current
                return
            if state.generation != self.generation:
                self._load(conn, state.generation, state.position)
            elif state.position > self.position:
                self._take_changes(conn, state.position)

    def _load(self, conn: Connection, generation: int, position: int) -> None:
        self.generation = None  # while loading, nothing is answered from here
        rows = conn.execution_options(yield_per=LOAD_BATCH).execute(
            _answers(generation, conn).limit(self.capacity)
        )
        # Every model, at start-up: rendered at once (in this thread, not on a get).
        self.entries = {row.id: ModelAnswer.rendered(row) for row in rows}
        self.position, self.generation = position, generation

    def _take_changes(self, conn: Connection, position: int) -> None:
        assert self.generation is not None
        models = catalogue_tables(self.generation, conn.dialect.name).models
        changed = conn.execute(
            _answers(self.generation, conn).where(models.c.position > self.position)
        )
        for row in changed:
            if row.id in self.entries or len(self.entries) < self.capacity:
                self.entries[row.id] = ModelAnswer(row)
        self.position = position


def _answers(generation: int, conn: Connection) -> Select[Any]:
    """The answer's columns, JSON as the text stored (decoded only when rendered)."""
    models = catalogue_tables(generation, conn.dialect.name).models
    return select(
        *(
            cast(models.c[name], Text).label(name) if name in _json_columns() else models.c[name]
            for name in MODEL_COLUMNS
        )
    )
