"""`modelledger audit verify`: a sound log passes; a log tampered with in the database
(a row deleted, an event's body spoiled) is caught and named, on both stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import pytest
from typer.testing import CliRunner

from modelledger.bootstrap import Ledger
from modelledger.cli import app
from projections.worker import PROJECTIONS
from queries.integrity import check_log
from tests.support.histories import a_model_story, write_models


def run_sql(ledger: Ledger, statement: str) -> None:
    """Straight to the event table, as an intruder or a disk fault would."""
    url = ledger.settings.store_url()
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            conn.execute(statement.replace("{table}", "stored_events").replace("{id}", "rowid"))
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            statement.replace("{table}", "modelregistry_events").replace("{id}", "notification_id")
        )


def audit(ledger: Ledger, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("MODELLEDGER_DATABASE_URL", ledger.settings.store_url())
    result = CliRunner().invoke(app, ["audit", "verify", *args])
    return result.exit_code, result.stdout


def a_registry(ledger: Ledger) -> None:
    write_models(ledger.registry, 20, seed=5)
    a_model_story(ledger.registry, "audited")
    ledger.start_projections()


def test_a_sound_log_and_its_projections_pass(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a registry whose projections have caught up
    a_registry(ledger)
    # When it is audited
    code, output = audit(ledger, monkeypatch)
    # Then the log is sound, every projection consistent, and the exit code 0
    assert code == 0, output
    assert "log: sound" in output and output.count(": consistent at position") == len(PROJECTIONS)


TAMPERING: dict[str, tuple[str, Callable[[str, bool], bool]]] = {
    "a deleted event": (
        "DELETE FROM {table} WHERE {id} = 7",
        # the next event of that model comes a version early; SQLite also lost a position
        lambda out, pg: "expected" in out and ("LOST" in out) != pg,
    ),
    "a spoiled body": (
        "UPDATE {table} SET state = CAST('{\"x\": 1' AS BYTEA) WHERE {id} = 5",
        lambda out, pg: "position 5: does not decode" in out,
    ),
    "a body missing fields": (
        "UPDATE {table} SET state = CAST('{}' AS BYTEA) WHERE {id} = 3",
        lambda out, pg: "position 3: lacks" in out,
    ),
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_a_tampered_log_is_caught_and_named(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, tampering: str
) -> None:
    # Given a registry, and its event table changed behind the service's back
    a_registry(ledger)
    statement, named = TAMPERING[tampering]
    postgres = not ledger.settings.store_url().startswith("sqlite")
    if not postgres:
        statement = statement.replace("AS BYTEA", "AS BLOB")
    run_sql(ledger, statement)
    # When the log is audited
    code, output = audit(ledger, monkeypatch, "--no-projections")
    # Then it is not sound, the problem is named, and the exit code is 1
    assert code == 1, output
    assert "log: NOT SOUND" in output and named(output, postgres), output


def test_the_report_counts_what_it_read(ledger: Ledger) -> None:
    write_models(ledger.registry, 12, seed=2)
    report = check_log(ledger.event_log, gaps_allowed=False, progress=lambda _: None)
    head = ledger.registry.recorder.max_notification_id()
    assert (report.events, report.models, report.head, report.gaps) == (head, 12, head, 0)
    assert report.sound and report.problems == []
