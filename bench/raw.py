"""The raw ceiling: single-row INSERT+COMMITs of event-sized rows on one connection."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from rich.progress import Progress, TaskID

from bench.service import fresh_database

STATE_BYTES = os.urandom(300)  # ~300 B like a serialized event; random, so no dedup tricks


# --------------------------------------------------------------------------
# Raw ceiling
# --------------------------------------------------------------------------

# Same shape as an event store's stored-events table: PK on the aggregate
# version plus a unique, ordered notification id.
RAW_DDL = """
CREATE TABLE stored_events (
    originator_id uuid NOT NULL,
    originator_version integer NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    notification_id bigserial NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX stored_events_notification_id_idx ON stored_events (notification_id);
"""
RAW_INSERT = (
    "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
    "VALUES (%s, %s, %s, %s)"
)
RAW_TOPIC = "modelledger.domain.model:Model.TrainingCompleted"


@dataclass
class RawResult:
    round: int
    rows: int
    seconds: float
    rows_per_s: float


def raw_ceiling(
    pg_url: str, seconds: float, max_rows: int, round_no: int, progress: Progress
) -> RawResult:
    """Single-row INSERT+COMMIT on one connection: what the DB alone can commit."""
    task = progress.add_task(f"[raw pg #{round_no}] INSERT+COMMIT", total=seconds, stats="")
    with fresh_database(pg_url) as db_url, psycopg.connect(db_url) as conn:
        conn.execute(RAW_DDL)
        conn.commit()
        rows, elapsed = _insert_loop(conn, seconds, max_rows, progress, task)
    progress.update(task, completed=seconds)
    return RawResult(round_no, rows, elapsed, rows / elapsed if elapsed > 0 else 0.0)


def _insert_loop(
    conn: psycopg.Connection[Any],
    seconds: float,
    max_rows: int,
    progress: Progress,
    task: TaskID,
) -> tuple[int, float]:
    start = time.monotonic()
    deadline = start + seconds
    rows = 0
    while rows < max_rows and time.monotonic() < deadline:
        # A fresh aggregate per 4 rows mimics create/train/complete/deploy.
        if rows % 4 == 0:
            originator = uuid.uuid4()
        conn.execute(RAW_INSERT, (originator, rows % 4 + 1, RAW_TOPIC, STATE_BYTES), prepare=True)
        conn.commit()
        rows += 1
        if rows % 500 == 0:
            now = time.monotonic()
            progress.update(
                task, completed=now - start, stats=f"{rows / (now - start):,.0f} rows/s"
            )
    return rows, time.monotonic() - start
