"""`modelledger migrate mlflow` as a user types it, on the committed export directory
(no MLflow server needed): what it says for bad input, a dry run, and the options.

The live server's stories are in tests/e2e/test_mlflow_migration.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.registry import CommandContext
from modelledger.cli import app
from tests.support.ledgers import make_ledger
from tests.support.processes import free_port
from write_model.values import model_id_for

EXPORT_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow_export"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("MODELLEDGER_DATABASE_URL", url)
    monkeypatch.setenv("MODELLEDGER_DATA_DIR", str(tmp_path / "var"))
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    return url


def migrate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["migrate", "mlflow", *args])
    return result.exit_code, result.output


def head(url: str) -> int:
    ledger = make_ledger(url)
    try:
        return ledger.event_log.head()
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give one of --tracking-uri URL or --from-export-dir DIR"),
        (("--tracking-uri", "http://x", "--from-export-dir", "."), "give one of"),
        (("--tracking-uri", "ftp://mlflow"), "is not an http(s) URL of an MLflow server"),
        (("--tracking-uri", "http://mlflow:port"), "is not a URL"),
        (("--from-export-dir", "/no/such/dir"), "no such directory"),
        (("--from-export-dir", str(EXPORT_DIR), "--project", "no spaces"), "not a project name"),
    ],
)
def test_bad_input_is_said_in_one_line_and_records_nothing(
    store: str, args: tuple[str, ...], says: str
) -> None:
    code, output = migrate(*args)

    assert code == 1 and says in output and "Traceback" not in output
    assert head(store) == 0


def test_a_directory_that_is_no_export_is_refused_naming_what_it_expected(
    store: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    code, output = migrate("--from-export-dir", str(empty))

    assert code == 1 and "mlflow-export-import" in output
    assert head(store) == 0


def test_an_mlflow_that_does_not_answer_leaves_the_store_as_it_was(store: str) -> None:
    code, output = migrate("--tracking-uri", f"http://127.0.0.1:{free_port()}")

    assert code == 1 and "is not answering" in output and "run it again" in output
    assert head(store) == 0


def test_metric_directions_must_say_minimize_or_maximize(store: str, tmp_path: Path) -> None:
    directions = tmp_path / "directions.json"
    directions.write_text(json.dumps({"val_score": "up"}))
    code, output = migrate(
        "--from-export-dir", str(EXPORT_DIR), "--metric-directions", str(directions)
    )
    assert code == 1 and "'up' is not minimize or maximize" in output

    directions.write_text("not json")
    code, output = migrate(
        "--from-export-dir", str(EXPORT_DIR), "--metric-directions", str(directions)
    )
    assert code == 1 and "--metric-directions" in output
    assert head(store) == 0


def test_a_dry_run_prints_the_summary_and_writes_nothing(store: str) -> None:
    code, output = migrate("--from-export-dir", str(EXPORT_DIR), "--dry-run")

    assert code == 0, output
    assert "3 registered models, 9 versions" in output and "dry run: nothing was written" in output
    assert "models created          │ 3" in output
    assert head(store) == 0


def test_the_options_put_every_model_in_a_project_and_declare_directions(
    store: str, tmp_path: Path
) -> None:
    directions = tmp_path / "directions.json"
    directions.write_text(json.dumps({"accuracy": "maximize", "loss": "lower"}))

    code, output = migrate(
        "--from-export-dir", str(EXPORT_DIR), "--project", "team-a",
        "--metric-directions", str(directions),
    )  # fmt: skip

    assert code == 0, output
    assert "metric definitions      │ 2" in output
    ledger = make_ledger(store)
    try:
        model = ledger.registry.load(model_id_for("team-a", "Modèle-ü"), CommandContext())
        assert model.project == "team-a" and model.versions
    finally:
        ledger.close()


def test_a_directory_wins_over_mlflows_own_tracking_uri_variable(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")

    code, output = migrate("--from-export-dir", str(EXPORT_DIR), "--dry-run")

    assert code == 0, output
    assert "3 registered models" in output
