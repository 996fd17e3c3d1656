"""A setting set to the empty string is an unset one: uncommenting a line of
.env.example as shipped turns nothing on and breaks nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelledger.settings import Settings


def test_empty_variables_and_env_file_lines_leave_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given empty variables, in the environment and in a .env file
    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.setenv("MODELLEDGER_PORT", "")
    (tmp_path / ".env").write_text("MODELLEDGER_WORKERS=\nHF_TOKEN=\nMODELLEDGER_LOG_LEVEL=debug\n")
    monkeypatch.chdir(tmp_path)
    # When the settings are read
    settings = Settings()
    # Then each empty one is unset (no provider is turned on with an empty key), and a
    # filled line still counts
    assert settings.openai_api_key is None and settings.hf_token is None
    assert (settings.port, settings.workers) == (8000, 1)
    assert settings.log_level == "debug"
