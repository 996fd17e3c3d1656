"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check their shape."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from modelledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_api_waits_for_a_healthy_postgres_and_points_at_it() -> None:
    services = compose()["services"]
    assert {"postgres", "api"} <= services.keys()
    for service in services.values():
        assert "healthcheck" in service
    api = services["api"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = api["environment"]["MODELLEDGER_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url


def test_every_setting_in_the_compose_file_exists() -> None:
    known = {f"MODELLEDGER_{name.upper()}" for name in Settings.model_fields}
    for service in compose()["services"].values():
        settings = {k for k in service.get("environment", {}) if k.startswith("MODELLEDGER_")}
        assert settings <= known, settings - known


def test_the_image_is_multi_stage_runs_as_a_user_and_serves() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert '"modelledger", "serve"' in dockerfile
