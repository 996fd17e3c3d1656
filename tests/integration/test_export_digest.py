"""An export proves itself: it ends with the digest of the log's hash chain (the one
`modelledger audit` computes), and `modelledger import` refuses, writing nothing, a
file whose events do not chain to it. On SQLite and PostgreSQL, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from modelledger.bootstrap import Ledger
from modelledger.cli import app
from queries.integrity import check_log
from tests.support.histories import write_models
from tests.support.ledgers import fresh_postgres_database, make_ledger

KINDS = ("sqlite", "postgres")
V1_EXPORT = Path(__file__).parents[1] / "fixtures" / "events-v1.jsonl"  # written before digests
TRAINED = "write_model.model:AIModel.ModelTrained"

Stores = Callable[[str], str]


@pytest.fixture
def stores(tmp_path: Path, request: pytest.FixtureRequest) -> Stores:
    """Makes URLs of new empty stores of a kind."""
    made = iter(range(1_000))

    def empty(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'store-{next(made)}.sqlite'}"
        return fresh_postgres_database(request.getfixturevalue("postgres_server"))

    return empty


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`modelledger ...` on the store at ``url``."""
    monkeypatch.chdir(tmp_path)  # no developer .env

    def run(url: str, *args: str) -> Result:
        monkeypatch.setenv("MODELLEDGER_DATABASE_URL", url)
        return CliRunner().invoke(app, list(args))

    return run


@contextmanager
def opened(url: str) -> Iterator[Ledger]:
    ledger = make_ledger(url)
    try:
        yield ledger
    finally:
        ledger.close()


def audit_digest(url: str) -> str:
    """The digest `modelledger audit verify` prints for the log at ``url``."""
    with opened(url) as ledger:
        return check_log(ledger.event_log, gaps_allowed=True, progress=lambda _: None).digest


def event_count(url: str) -> int:
    with opened(url) as ledger:
        return ledger.registry.recorder.max_notification_id() or 0


def a_registry(url: str, models: int = 6, seed: int = 5) -> None:
    with opened(url) as ledger:
        write_models(ledger.registry, models, seed=seed)


def printed_digest(result: Result) -> str:
    return result.stderr.strip().splitlines()[-1].rsplit(" ", 1)[-1]


def with_one_metric_edited(text: str) -> str:
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if TRAINED in line)
    record: dict[str, Any] = json.loads(lines[index])
    metric = next(iter(record["state"]["metrics"]))
    record["state"]["metrics"][metric] = round(record["state"]["metrics"][metric] + 0.01, 4)
    lines[index] = json.dumps(record)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", KINDS)
def test_an_export_with_one_metric_edited_is_refused_and_an_untouched_one_imports(
    stores: Stores, cli: Callable[..., Result], tmp_path: Path, kind: str
) -> None:
    # Given a registry with trained models, exported
    source = stores(kind)
    a_registry(source)
    exported = cli(source, "export")
    assert exported.exit_code == 0, exported.output
    # Then the export ends with the log's own hash chain digest, in the footer and on stderr
    digest = printed_digest(exported)
    footer = json.loads(exported.stdout.splitlines()[-1])["footer"]
    assert footer["digest"] == digest == audit_digest(source)
    # When one metric value is edited in the file and it is imported into an empty store
    edited = tmp_path / "edited.jsonl"
    edited.write_text(with_one_metric_edited(exported.stdout))
    target = stores(kind)
    refused = cli(target, "import", str(edited))
    # Then it is refused, naming the digest it does not match, and nothing is written
    assert refused.exit_code == 1, refused.output
    assert "not to the footer's digest" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert event_count(target) == 0
    # And a file cut short is still refused
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(exported.stdout.splitlines()[:-4]) + "\n")
    assert cli(target, "import", str(truncated)).exit_code == 1
    assert event_count(target) == 0
    # When the untouched file is imported, it is, and the copy has the same digest
    untouched = tmp_path / "events.jsonl"
    untouched.write_text(exported.stdout)
    imported = cli(target, "import", str(untouched), "--digest", digest)
    assert imported.exit_code == 0, imported.output
    assert "warning" not in imported.stderr
    assert printed_digest(imported) == digest == audit_digest(target)
    again = cli(target, "export")
    assert json.loads(again.stdout.splitlines()[-1])["footer"]["digest"] == digest


@pytest.mark.parametrize("kind", KINDS)
def test_an_export_from_before_digests_imports_with_a_warning_unless_a_digest_is_given(
    stores: Stores, cli: Callable[..., Result], kind: str
) -> None:
    # Given an export written before exports carried a digest
    assert "digest" not in V1_EXPORT.read_text().splitlines()[-1]
    # When it is imported
    first = stores(kind)
    imported = cli(first, "import", str(V1_EXPORT))
    # Then it is, with a warning that its events could not be checked as a whole
    assert imported.exit_code == 0, imported.output
    assert "warning" in imported.stderr and "no digest" in imported.stderr
    digest = printed_digest(imported)
    assert digest == audit_digest(first)
    # When it is imported with a digest kept from elsewhere that it does not match
    second = stores(kind)
    wrong = cli(second, "import", str(V1_EXPORT), "--digest", "0" * 64)
    # Then it is refused, and nothing is written
    assert wrong.exit_code == 1 and "not to the expected" in wrong.stderr, wrong.output
    assert event_count(second) == 0
    # and with the digest it does match, it is imported without a warning
    right = cli(second, "import", str(V1_EXPORT), "--digest", digest)
    assert right.exit_code == 0 and "warning" not in right.stderr, right.output


@pytest.mark.parametrize("kind", KINDS)
def test_an_export_after_a_position_continues_the_logs_chain(
    stores: Stores, cli: Callable[..., Result], kind: str
) -> None:
    # Given a log whose digest at its head N was taken, and later events
    source = stores(kind)
    a_registry(source, models=3, seed=1)
    position, digest_then = event_count(source), audit_digest(source)
    a_registry(source, models=3, seed=2)
    # When only the events after N are exported
    exported = cli(source, "export", "--after", str(position))
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    # Then the file starts where the log's chain stood at N and ends at the log's digest
    # now: the same as a whole export's, and as the audit's
    assert lines[1]["position"] == position + 1
    assert lines[0]["after_digest"] == digest_then
    assert lines[-1]["footer"]["digest"] == printed_digest(exported) == audit_digest(source)
    whole = cli(source, "export")
    assert json.loads(whole.stdout.splitlines()[-1])["footer"]["digest"] == audit_digest(source)
