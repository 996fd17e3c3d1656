"""Reading a projection: which tables serve it, the position they reflect, and
read-your-writes (wait, bounded, until the projection reaches ``min_position``).

Driver errors of the read database become ``ReadStoreUnavailable`` here, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from queries.errors import InvalidQuery, ProjectionBehind, ReadStoreUnavailable
from read_model.state import ProjectionState, read_state

log = logging.getLogger("modelledger.queries")


# With wake-ups, the tables are still asked this often: a missed wake-up costs latency only.
WAKE_CHECK_SECONDS = 0.1


@dataclass(frozen=True)
class Snapshot:
    """An open read of one projection: its tables' generation and its position."""

    conn: Connection
    generation: int
    position: int


@contextmanager
def read_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as error:
        log.warning("read store unavailable: %s", str(error).splitlines()[0])
        raise ReadStoreUnavailable("the read database is unavailable; retry shortly") from error


def for_reading(engine: Engine) -> Engine:
    """PostgreSQL reads run without BEGIN/ROLLBACK (two round trips fewer): the
    position is read before the rows, so the rows can only be newer. SQLite keeps
    its transaction, which is one snapshot for both."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _state_of(conn: Connection, projection: str) -> ProjectionState | None:
    """The projection's state, retried once on a connection the database dropped
    (a restart): SQLAlchemy then replaces the pool's connections, so the next
    try, and the rest of the read, use a fresh one (cheaper than a ping per read)."""
    try:
        return read_state(conn, projection)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    conn.rollback()
    return read_state(conn, projection)


def within_the_log(min_position: int, head: int) -> None:
    """A position the log has not reached is one no read can reflect: refused (422)."""
    if min_position > head:
        raise InvalidQuery(
            f"min_position {min_position} is past the end of the log (position {head})",
            field="min_position",
        )


@contextmanager
def reading(
    engine: Engine,
    projection: str,
    version: int,
    min_position: int | None = None,
    timeout: float = 5.0,
    log_head: Callable[[], int] | None = None,
    wait: Callable[[str, int, float], None] | None = None,
) -> Iterator[Snapshot]:
    """Open a read of ``projection`` once it has reached ``min_position``.

    A ``min_position`` past the end of the log (``log_head``, asked only when the
    projection is short of it) can never be reached: refused at once, not after
    the wait, with a 503 that would invite retries.

    The position is read before the rows (in one snapshot on SQLite; on
    PostgreSQL the rows can only be newer), so ``Snapshot.position`` never
    claims more than the answer holds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    with read_errors():
        while True:
            with for_reading(engine).connect() as conn:
                state = _state_of(conn, projection)
                if state is None or state.version != version:
                    raise ProjectionBehind(
                        f"the {projection} projection is being built; retry shortly"
                    )
                if min_position is None or state.position >= min_position:
                    yield Snapshot(conn, state.generation, state.position)
                    return
            if log_head is not None:
                within_the_log(min_position, log_head())
                log_head = None  # once: the log only grows
            if time.monotonic() >= deadline:
                raise ProjectionBehind(
                    f"the {projection} projection is at position {state.position}, "
                    f"not yet at min_position {min_position}; retry shortly",
                    field="min_position",
                )
            if wait is None:
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
            else:  # woken when the projection is seen there (a commit, an announcement)
                assert min_position is not None
                wait(projection, min_position, min(WAKE_CHECK_SECONDS, deadline - time.monotonic()))
