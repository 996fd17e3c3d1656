"""A setting that is gone never stops the service: it is named in a warning and ignored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelledger.settings import REMOVED, Settings, warn_removed


def test_a_removed_setting_still_set_is_warned_about_and_ignored(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment of a deployment made before the answer cache had a byte bound
    monkeypatch.setenv("MODELLEDGER_MODEL_ANSWERS_SIZE", "100000")
    monkeypatch.setenv("MODELLEDGER_QUERY_CACHE_SIZE", "1024")
    # When the settings are read and checked for removed names
    with caplog.at_level(logging.WARNING, logger="modelledger.settings"):
        settings = Settings(_env_file=None)
        warned = warn_removed()
    # Then both are named, with what replaced them, and the settings load as usual
    assert sorted(warned) == ["MODELLEDGER_MODEL_ANSWERS_SIZE", "MODELLEDGER_QUERY_CACHE_SIZE"]
    for name in warned:
        assert any(name in r.getMessage() and "ANSWER_CACHE_MB" in r.getMessage()
                   for r in caplog.records)  # fmt: skip
    assert settings.answer_cache_mb == 14


def test_nothing_is_said_when_no_removed_setting_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REMOVED:
        monkeypatch.delenv(name, raising=False)
    assert warn_removed() == []


def test_a_removed_setting_in_the_env_file_is_warned_about_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a .env file (read by the settings) that still sets a removed setting
    (tmp_path / ".env").write_text("MODELLEDGER_QUERY_CACHE_SIZE=1024\n")
    monkeypatch.chdir(tmp_path)
    for name in REMOVED:
        monkeypatch.delenv(name, raising=False)
    # Then it is warned about, as if set in the environment
    assert warn_removed() == ["MODELLEDGER_QUERY_CACHE_SIZE"]
