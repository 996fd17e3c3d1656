"""The service's data files are its owner's: SQLite stores, their WAL/SHM files and
admin.key 0600, the data directory 0700, from the first start and after it."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelledger.bootstrap import bootstrap
from modelledger.cli import prepare_to_serve
from modelledger.settings import Settings
from tests.support.auth import api_client

MODELS = "/api/v1/models"
LOOSE_UMASK = 0o022  # the usual one: files 0644, folders 0755 unless the service says otherwise


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(LOOSE_UMASK)
    yield
    os.umask(previous)


def serve_settings(store_url: str, data_dir: Path) -> Settings:
    """`serve`'s settings on an empty data directory: auth on and no admin key set (so
    serve issues one into admin.key); on SQLite, the embedded default's files in it."""
    database_url = None if store_url.startswith("sqlite") else store_url
    return Settings(_env_file=None, data_dir=data_dir, database_url=database_url, tune_gc=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def data_files(data_dir: Path) -> dict[str, int]:
    return {path.name: mode(path) for path in sorted(data_dir.iterdir())}


def test_a_first_start_creates_every_data_file_for_its_owner_only(
    store_url: str, tmp_path: Path, usual_umask: None
) -> None:
    # Given a data directory that does not exist yet
    data_dir = tmp_path / "var"
    settings = serve_settings(store_url, data_dir)
    # When serve prepares it and a few commands are written (the store open, so the
    # WAL and shared-memory files are there)
    prepare_to_serve(settings)
    ledger = bootstrap(settings)
    try:
        key = (data_dir / "admin.key").read_text().strip()
        with api_client(ledger, key) as client:
            body = {"name": "churn", "task": "classification", "framework": "sklearn"}
            model_id = client.post(MODELS, json=body).json()["id"]
            run = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "s3://d"}).json()
            done = client.post(
                f"{MODELS}/{model_id}/training-runs/{run['run_id']}/complete",
                json={"metrics": {"accuracy": 0.9}},
            )
            assert done.status_code == 200, done.text
            read = client.get(
                f"{MODELS}/{model_id}", params={"min_position": done.json()["position"]}
            )
            assert read.status_code == 200, read.text
            files = data_files(data_dir)
    finally:
        ledger.close()
    # Then every file in the data directory is its owner's, and so is the directory
    if settings.database_url is None:
        for database in ("modelledger.sqlite", "modelledger.read.sqlite"):
            for suffix in ("", "-wal", "-shm"):
                assert database + suffix in files, f"{database}{suffix} missing: {files}"
    assert "admin.key" in files
    assert {name: oct(m) for name, m in files.items()} == dict.fromkeys(files, "0o600")
    assert mode(data_dir) == 0o700


def test_a_start_takes_others_rights_off_data_files_an_earlier_run_left(
    tmp_path: Path, usual_umask: None
) -> None:
    # Given the embedded default's files as an earlier version left them, readable by
    # everyone, with the log still open elsewhere (so its WAL and SHM files are there)
    data_dir = tmp_path / "var"
    settings = serve_settings("sqlite", data_dir)
    prepare_to_serve(settings)
    elsewhere = sqlite3.connect(data_dir / "modelledger.sqlite")
    try:
        elsewhere.execute("SELECT count(*) FROM stored_events").fetchall()
        assert (data_dir / "modelledger.sqlite-wal").exists()
        for path in data_dir.iterdir():
            path.chmod(0o644)
        data_dir.chmod(0o755)
        # When serve starts again
        prepare_to_serve(settings)
        # Then the directory and every file in it are the owner's only
        files = data_files(data_dir)
        assert {"modelledger.sqlite-wal", "modelledger.sqlite-shm", "admin.key"} <= files.keys()
        assert {name: oct(m) for name, m in files.items()} == dict.fromkeys(files, "0o600")
        assert mode(data_dir) == 0o700
    finally:
        elsewhere.close()
