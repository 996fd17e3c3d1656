"""API keys across processes and from the command line, on the real stores."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelledger.cli import app as cli
from modelledger.keys_cli import ensure_admin_key
from tests.support.auth import api_client, bearer
from tests.support.ledgers import make_ledger

KEYS = "/api/v1/admin/keys"
MODELS = "/api/v1/models"


def test_a_key_revoked_through_one_replica_stops_working_on_another(store_url: str) -> None:
    # Given two API replicas on one store, each trusting a verified key for 0.2 s
    replica_a = make_ledger(store_url, key_cache_seconds=0.2)
    replica_b = make_ledger(store_url, key_cache_seconds=0.2)
    try:
        with api_client(replica_a) as a, api_client(replica_b) as b:
            issued = a.post(KEYS, json={"name": "ci-bot", "role": "viewer"}).json()
            # and the key in use on replica B
            assert b.get(MODELS, headers=bearer(issued["key"])).status_code == 200
            # When it is revoked through replica A
            assert a.delete(f"{KEYS}/{issued['id']}").status_code == 200
            revoked_at = time.monotonic()
            # Then replica B refuses it once its trust has run out
            while b.get(MODELS, headers=bearer(issued["key"])).status_code != 401:
                assert time.monotonic() - revoked_at < 5, "replica B still accepts the key"
                time.sleep(0.05)
            # and replica A refused it at once
            assert a.get(MODELS, headers=bearer(issued["key"])).status_code == 401
    finally:
        replica_a.close()
        replica_b.close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("MODELLEDGER_DATA_DIR", str(tmp_path / "var"))
    (tmp_path / "var").mkdir()
    return tmp_path / "var"


def test_keys_from_the_command_line_are_issued_listed_and_revoked(data_dir: Path) -> None:
    runner = CliRunner()
    # When an operator issues a key on the command line
    made = runner.invoke(
        cli, ["keys", "create", "--name", "ci-bot", "--role", "editor", "--project", "fraud"]
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("mlk_")
    # Then the service (which checks the store on every request) accepts it, for its
    # project only, with its name as the actor
    ledger = make_ledger(f"sqlite:///{data_dir / 'modelledger.sqlite'}", key_cache_seconds=0)
    try:
        with api_client(ledger, key) as bot:
            body = {"name": "m", "project": "fraud", "task": "t", "framework": "f"}
            created = bot.post(MODELS, json=body)
            assert created.status_code == 201, created.text
            history = bot.get(f"{MODELS}/{created.json()['id']}/history").json()["items"]
            assert history[0]["actor"] == "ci-bot"
            assert bot.post(MODELS, json={**body, "project": "vision"}).status_code == 403
            # and the list names it, never showing the key
            listed = runner.invoke(cli, ["keys", "list"])
            assert listed.exit_code == 0, listed.output
            assert "ci-bot  editor  fraud  active" in listed.stdout
            assert key not in listed.stdout
            key_id = listed.stdout.split()[0]
            # When it is revoked
            revoked = runner.invoke(cli, ["keys", "revoke", key_id])
            assert revoked.exit_code == 0, revoked.output
            # Then it stops working, and the list shows it only with --all
            assert bot.get(MODELS).status_code == 401
            assert "ci-bot" not in runner.invoke(cli, ["keys", "list"]).stdout
            assert "revoked" in runner.invoke(cli, ["keys", "list", "--all"]).stdout
    finally:
        ledger.close()
    # and a bad role is a one-line error, not a traceback
    bad = runner.invoke(cli, ["keys", "create", "--name", "x", "--role", "owner"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_serve_issues_an_admin_key_once_and_only_when_none_is_configured(
    store_url: str, tmp_path: Path
) -> None:
    # Given an empty store, no admin key in the settings, auth on
    ledger = make_ledger(store_url, admin_key=None, data_dir=tmp_path)
    try:
        # When serve prepares it, an admin key is issued into DATA_DIR, readable by its owner
        path = ensure_admin_key(ledger, ledger.settings)
        assert path is not None and path.stat().st_mode & 0o777 == 0o600
        key = path.read_text().strip()
        with api_client(ledger, key) as admin:
            assert admin.get(KEYS).status_code == 200
        # When serve prepares it again, nothing more is issued
        assert ensure_admin_key(ledger, ledger.settings) is None
    finally:
        ledger.close()
    # and with MODELLEDGER_ADMIN_KEY set, or auth off, none is issued at all
    for settings in ({"admin_key": "k" * 40}, {"admin_key": None, "auth": False}):
        other = make_ledger(f"sqlite:///{tmp_path / 'other.sqlite'}", data_dir=tmp_path, **settings)
        try:
            assert ensure_admin_key(other, other.settings) is None
        finally:
            other.close()


def test_a_bad_admin_key_setting_is_one_line_that_never_shows_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an admin key too short to be safe
    monkeypatch.setenv("MODELLEDGER_ADMIN_KEY", "hunter2")
    # When the server or a CLI command starts
    for command in (["serve"], ["keys", "list"]):
        result = CliRunner().invoke(cli, command)
        # Then it stops with one line naming the setting, not the value, and no traceback
        assert result.exit_code == 1, result.output
        assert "MODELLEDGER_ADMIN_KEY" in result.output
        assert "hunter2" not in result.output and "Traceback" not in result.output
