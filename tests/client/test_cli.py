"""`mledger`, as a CI job runs it: tables for people, --json for scripts, and an exit
code that says what went wrong."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from modelledger_client.cli import app
from tests.support.processes import ApiProcess, free_port

pytestmark = pytest.mark.slow


def mledger(server: ApiProcess, *args: str, key: str | None = None) -> tuple[int, str]:
    env = {"MODELLEDGER_URL": server.base_url, "MODELLEDGER_API_KEY": key or server.key}
    env["COLUMNS"] = "200"  # (a wide terminal: whole cells in the tables)
    done = CliRunner().invoke(app, list(args), env=env)
    return done.exit_code, done.output


def test_a_model_from_register_to_deploy_on_the_command_line(sqlite_server: ApiProcess) -> None:
    register = ("models", "register", "cli-model", "--project", "cli", "--task", "t")
    code, out = mledger(sqlite_server, "--json", *register, "--framework", "f", "--tag", "a")
    assert code == 0, out
    model_id = json.loads(out)["id"]
    code, out = mledger(sqlite_server, "--json", "training", "start", model_id, "--dataset", "d",
                        "--param", "depth=6")  # fmt: skip
    run_id = json.loads(out)["run_id"]
    code, out = mledger(sqlite_server, "training", "complete", model_id, run_id,
                        "--metric", "accuracy=0.9")  # fmt: skip
    assert code == 0 and "model_version" in out  # (a table's header)
    assert (
        mledger(sqlite_server, "deployments", "deploy", model_id, "--environment", "prod")[0] == 0
    )
    # A table for people, JSON for scripts
    code, out = mledger(sqlite_server, "models", "get", model_id)
    assert code == 0 and "cli-model" in out and "deployed" in out
    code, out = mledger(sqlite_server, "--json", "models", "search", "--project", "cli")
    assert [m["name"] for m in json.loads(out)] == ["cli-model"]
    code, out = mledger(sqlite_server, "--json", "leaderboard", "accuracy", "--project", "cli")
    assert json.loads(out)[0]["value"] == 0.9
    code, out = mledger(sqlite_server, "--json", "history", model_id)
    assert [e["type"] for e in json.loads(out)][-1] == "ModelDeployed"
    code, out = mledger(sqlite_server, "--json", "statistics", "--project", "cli")
    assert json.loads(out)["by_status"] == {"deployed": 1}
    code, out = mledger(sqlite_server, "--json", "events", "follow", "--after", "0",
                        "--model-id", model_id, "--count", "2")  # fmt: skip
    assert [json.loads(line)["type"] for line in out.splitlines()] == [
        "ModelCreated", "TrainingStarted"
    ]  # fmt: skip


def test_each_kind_of_failure_has_its_exit_code(sqlite_server: ApiProcess) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    register = ("models", "register", "twice", "--project", "cli-codes", "--task", "t",
                "--framework", "f")  # fmt: skip
    assert mledger(sqlite_server, *register)[0] == 0
    assert mledger(sqlite_server, "models", "get")[0] == 2  # usage
    assert mledger(sqlite_server, "models", "get", unknown)[0] == 3  # not found
    assert mledger(sqlite_server, *register)[0] == 4  # conflict
    code, out = mledger(sqlite_server, "models", "register", "", "--project", "p", "--task",
                        "t", "--framework", "f")  # fmt: skip
    assert code == 5 and "body.name" in out  # invalid, naming the field
    assert mledger(sqlite_server, "models", "get", unknown, key="mlk_wrong")[0] == 6
    nowhere = {"MODELLEDGER_URL": f"http://127.0.0.1:{free_port()}", "MODELLEDGER_API_KEY": "k"}
    done = CliRunner().invoke(app, ["--attempts", "1", "statistics"], env=nowhere)
    assert done.exit_code == 7, done.output  # unavailable
    done = CliRunner().invoke(app, ["--json", "--attempts", "1", "statistics"], env=nowhere)
    assert "error" in json.loads(done.output)
