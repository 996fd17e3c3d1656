"""`modelledger audit seal`: the log's hash chain digest recorded at the head. A
later `audit verify` catches an event changed behind the service's back even
when it still decodes, and names the stretch of the log it is in; on both stores."""

from __future__ import annotations

import io
import json
import sqlite3

import psycopg
import pytest
from typer.testing import CliRunner

from commands.archive import export_events, import_events
from modelledger.bootstrap import Ledger
from modelledger.cli import app
from queries.integrity import check_log
from tests.support.histories import write_models
from tests.support.ledgers import make_ledger


def cli(ledger: Ledger, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("MODELLEDGER_DATABASE_URL", ledger.settings.store_url())
    result = CliRunner().invoke(app, ["audit", *args])
    return result.exit_code, result.stdout


def rename_in_event(ledger: Ledger, position: int, name: str) -> None:
    """Rewrite one stored event's body with a different, still valid, model name:
    as someone with the database's password might."""
    stored = ledger.registry.recorder.select_notifications(position, 1)[0]
    state = json.loads(stored.state)
    state["name"] = name
    body = json.dumps(state, separators=(",", ":")).encode()
    url = ledger.settings.store_url()
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (body, position))
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE modelregistry_events SET state = %s WHERE notification_id = %s",
            (body, position),
        )


def test_a_changed_event_that_still_decodes_is_caught_by_the_seals(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a log sealed twice, with more events after each seal
    write_models(ledger.registry, 5, seed=1)
    code, output = cli(ledger, monkeypatch, "seal")
    assert code == 0, output
    first_sealed = ledger.registry.recorder.max_notification_id() or 0
    write_models(ledger.registry, 5, seed=2)
    code, output = cli(ledger, monkeypatch, "seal")
    assert code == 0 and "sealed at position" in output, output
    sealed = ledger.registry.recorder.max_notification_id() or 0
    write_models(ledger.registry, 3, seed=3)
    code, output = cli(ledger, monkeypatch, "verify", "--no-projections")
    assert code == 0 and "2 seals hold, the latest at position" in output, output
    # When a ModelCreated between the two seals is renamed in the database
    renamed = next(
        n.id
        for n in ledger.registry.recorder.select_notifications(1, sealed)
        if n.topic.endswith("ModelCreated") and n.id > first_sealed
    )
    rename_in_event(ledger, renamed, "innocent-looking")
    # Then it still decodes, but the audit fails on the second seal and says the
    # change is after the first
    code, output = cli(ledger, monkeypatch, "verify", "--no-projections")
    assert code == 1, output
    assert f"the log up to position {sealed} is not the one sealed" in output, output
    assert f"after position {first_sealed} (sealed" in output and "log: NOT SOUND" in output
    # and a tampered log cannot be sealed
    code, output = cli(ledger, monkeypatch, "seal")
    assert code == 1 and "sealed at position" not in output


def test_the_chain_is_the_same_after_export_and_import(ledger: Ledger) -> None:
    # Given a log, and its export imported into a new store
    write_models(ledger.registry, 8, seed=4)
    out = io.StringIO()
    export_events(ledger.event_log, out, progress=lambda _: None)
    copy = make_ledger("memory://")
    try:
        lines = out.getvalue().splitlines(keepends=True)
        import_events(copy.registry.recorder, copy.registry.mapper, lines, progress=lambda _: None)
        # When both are checked
        here = check_log(ledger.event_log, gaps_allowed=False, progress=lambda _: None)
        there = check_log(copy.event_log, gaps_allowed=False, progress=lambda _: None)
        # Then their chains end at the same digest (a seal taken here holds there)
        assert here.digest == there.digest
        assert here.digest != bytes(32).hex()
    finally:
        copy.close()
