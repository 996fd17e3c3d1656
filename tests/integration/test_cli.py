"""The command line: seed writes real history through the handlers; events prints it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelledger.cli import app


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("MODELLEDGER_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var" / "modelledger.sqlite"


def test_seed_then_events_prints_the_whole_log_in_order(store: Path) -> None:
    runner = CliRunner()
    seeded = runner.invoke(app, ["seed", "--models", "20", "--concurrency", "4"])
    assert seeded.exit_code == 0, seeded.output
    assert "seeded 20 models" in seeded.output
    assert store.exists()

    printed = runner.invoke(app, ["events"])
    assert printed.exit_code == 0, printed.output
    events = [json.loads(line) for line in printed.output.splitlines()]
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    kinds = {e["type"] for e in events}
    assert {"ModelCreated", "TrainingStarted", "ModelTrained", "ModelDeployed"} <= kinds
    assert sum(e["type"] == "ModelCreated" for e in events) == 20
    assert all(e["actor"] == "seed" for e in events)


def test_events_filters_by_model_and_position_range(store: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["seed", "--models", "5"]).exit_code == 0
    everything = [json.loads(x) for x in runner.invoke(app, ["events"]).output.splitlines()]
    model = everything[0]["model_id"]

    mine = runner.invoke(app, ["events", "--model", model]).output.splitlines()
    assert {json.loads(line)["model_id"] for line in mine} == {model}
    assert len(mine) == sum(e["model_id"] == model for e in everything)

    window = runner.invoke(app, ["events", "--after", "2", "--until", "5"]).output.splitlines()
    assert [json.loads(line)["position"] for line in window] == [3, 4, 5]
    limited = runner.invoke(app, ["events", "--limit", "2"]).output.splitlines()
    assert len(limited) == 2
