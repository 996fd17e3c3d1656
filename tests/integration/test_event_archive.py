"""Export and import of the event log: a backup restores the same registry, on either
store, and a bad file is refused with its line number, leaving the store untouched."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commands.archive import ArchiveError, StoreNotEmpty, export_events, import_events
from modelledger.bootstrap import Ledger
from modelledger.cli import app
from queries.models import get_model, model_view
from tests.support.histories import a_model_story, logged_model_ids, write_models
from tests.support.ledgers import fresh_postgres_database, make_ledger

KINDS = ("sqlite", "postgres")


@pytest.fixture
def stores(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Makes empty ledgers of a kind; closes them all at the end."""
    made: list[Ledger] = []

    def empty(kind: str) -> Ledger:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / f'store-{len(made)}.sqlite'}"
        else:
            url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
        made.append(make_ledger(url))
        return made[-1]

    yield empty
    for ledger in made:
        ledger.close()


def exported(ledger: Ledger, after: int = 0) -> str:
    out = io.StringIO()
    export_events(ledger.event_log, out, after=after, progress=lambda _: None)
    return out.getvalue()


def load(ledger: Ledger, text: str) -> Any:
    lines = io.StringIO(text)
    return import_events(
        ledger.registry.recorder, ledger.registry.mapper, lines, progress=lambda _: None
    )


def the_log(ledger: Ledger) -> list[tuple[int, str, int, str, dict[str, Any]]]:
    page = ledger.registry.recorder.select_notifications(start=1, limit=100_000)
    return [
        (n.id, str(n.originator_id), n.originator_version, n.topic, json.loads(n.state))
        for n in page
    ]


def a_registry(ledger: Ledger) -> None:
    write_models(ledger.registry, 30, seed=3)
    a_model_story(ledger.registry, "story")


@pytest.mark.parametrize(("source_kind", "target_kind"), [(a, b) for a in KINDS for b in KINDS])
def test_an_import_into_an_empty_store_reproduces_the_registry(
    stores: Any, source_kind: str, target_kind: str
) -> None:
    # Given a registry with history
    source = stores(source_kind)
    a_registry(source)
    # When its export is imported into an empty store (of either kind)
    target = stores(target_kind)
    summary = load(target, exported(source))
    # Then the log is the same event for event, in the same positions
    assert the_log(target) == the_log(source)
    assert summary.events == len(the_log(source)) and summary.first_position == 1
    # and every model folds to the same state
    model_ids = logged_model_ids(source.registry)
    assert summary.models == len(model_ids) == 31
    for model_id in model_ids:
        mine, _ = get_model(source.event_log, model_id)
        theirs, _ = get_model(target.event_log, model_id)
        assert model_view(theirs) == model_view(mine)


@pytest.mark.parametrize("kind", KINDS)
def test_an_import_into_a_store_with_events_is_refused(stores: Any, kind: str) -> None:
    # Given a store that already holds events
    source, target = stores("sqlite"), stores(kind)
    a_registry(source)
    a_model_story(target.registry, "already-here")
    before = the_log(target)
    # When an export is imported into it
    # Then it is refused and the store is as it was
    with pytest.raises(StoreNotEmpty):
        load(target, exported(source))
    assert the_log(target) == before


def test_a_partial_export_holds_only_later_events(stores: Any) -> None:
    source = stores("sqlite")
    a_registry(source)
    lines = exported(source, after=10).splitlines()
    events = [json.loads(line) for line in lines[1:-1]]
    assert events[0]["position"] == 11 and len(events) == len(the_log(source)) - 10
    footer = json.loads(lines[-1])["footer"]
    assert (footer["events"], footer["last_position"]) == (len(events), 10 + len(events))
    # and it cannot seed a store (it would start at an event that has no history)
    with pytest.raises(ArchiveError, match="partial export"):
        load(stores("sqlite"), "\n".join(lines))


def _spoil(lines: list[str], index: int, **changes: Any) -> list[str]:
    record = json.loads(lines[index])
    record.update(changes)
    return [*lines[:index], json.dumps(record), *lines[index + 1 :]]


BAD_FILES: dict[str, Any] = {
    "cut mid-line": (lambda lines: "\n".join(lines)[: len("\n".join(lines[:8])) + 20], 9),
    "cut at a line boundary": (lambda lines: "\n".join(lines[:-3]), 0),
    "a corrupt line": (lambda lines: "\n".join([*lines[:5], "{not json", *lines[6:]]), 6),
    "a missing event": (lambda lines: "\n".join([*lines[:4], *lines[5:]]), 5),
    "a version gap": (lambda lines: "\n".join(_spoil(lines, 4, version=7)), 5),
    "positions out of order": (lambda lines: "\n".join(_spoil(lines, 6, position=2)), 7),
    "an unknown event type": (
        lambda lines: "\n".join(_spoil(lines, 3, topic="write_model.model:AIModel.Baked")),
        4,
    ),
    "a bad event body": (lambda lines: "\n".join(_spoil(lines, 2, state={"x": 1})), 3),
    "no header": (lambda lines: "\n".join(lines[1:]), 1),
    "empty": (lambda lines: "", 1),
    "data after the footer": (lambda lines: "\n".join([*lines, lines[3]]), "after the footer"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spoiled", BAD_FILES, ids=str)
def test_a_bad_file_is_reported_by_line_and_nothing_is_imported(
    stores: Any, kind: str, spoiled: str
) -> None:
    # Given an export, spoiled in some way
    source = stores("sqlite")
    a_registry(source)
    spoil, line = BAD_FILES[spoiled]
    lines = exported(source).splitlines()
    text = spoil(lines)
    if line == "after the footer":
        line = len(lines) + 1
    # When it is imported into an empty store
    target = stores(kind)
    with pytest.raises(ArchiveError) as raised:
        load(target, text)
    # Then the error names the line at fault (0: the file as a whole), and nothing was written
    assert raised.value.line == line, str(raised.value)
    assert the_log(target) == []


def test_the_cli_moves_a_registry_from_sqlite_to_another_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a seeded embedded store
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELLEDGER_DATA_DIR", str(tmp_path / "old"))
    runner = CliRunner()
    assert runner.invoke(app, ["seed", "--models", "10"]).exit_code == 0
    # When it is exported, and imported into a new store
    dumped = runner.invoke(app, ["export"])
    assert dumped.exit_code == 0, dumped.output
    backup = tmp_path / "events.jsonl"
    backup.write_text(dumped.stdout)
    monkeypatch.setenv("MODELLEDGER_DATA_DIR", str(tmp_path / "new"))
    loaded = runner.invoke(app, ["import", str(backup)])
    # Then the new store prints the same log; a second import is refused with exit 1
    assert loaded.exit_code == 0, loaded.output
    assert "imported" in loaded.stderr and "of 10 models" in loaded.stderr
    assert runner.invoke(app, ["export"]).stdout.splitlines()[1:] == dumped.stdout.splitlines()[1:]
    again = runner.invoke(app, ["import", str(backup)])
    assert again.exit_code == 1 and "nothing was imported" in again.stderr
