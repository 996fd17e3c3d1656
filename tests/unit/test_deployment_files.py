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


def test_the_topology_has_every_process_each_built_or_pulled_and_checked() -> None:
    services = compose()["services"]
    assert services.keys() == {
        "postgres",
        "redis",
        "kafka",
        "api",
        "projector",
        "relay",
        "worker",
        "deliver",
    }
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert service["healthcheck"]["test"], name


def test_two_api_replicas_without_projections_wait_for_their_stores() -> None:
    api = compose()["services"]["api"]
    assert api["deploy"]["replicas"] == 2
    assert api["command"] == ["modelledger", "serve", "--no-projections"]
    env = api["environment"]
    assert env["MODELLEDGER_PROJECTIONS"] == "false"
    assert env["MODELLEDGER_PROVIDER_WORKER"] == "false"  # the worker service does that
    assert env["MODELLEDGER_WEBHOOKS"] == "false"  # the deliver service does that
    assert "MODELLEDGER_SECRETS_KEY" in env  # every process opens the same sealed secrets
    assert env["MODELLEDGER_REDIS_URL"].startswith("redis://redis:")
    assert "MODELLEDGER_ADMIN_KEY" in env  # replicas share one admin key, none issues its own
    url = env["MODELLEDGER_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url
    for store in ("postgres", "redis"):
        assert api["depends_on"][store]["condition"] == "service_healthy"


def test_one_projector_relay_provider_worker_and_deliverer_on_the_same_store() -> None:
    services = compose()["services"]
    api_store = services["api"]["environment"]["MODELLEDGER_DATABASE_URL"]
    followers = ("projector", "project"), ("relay", "relay"), ("worker", "worker")
    for name, command in (*followers, ("deliver", "deliver")):
        service = services[name]
        assert service["command"] == ["modelledger", command]
        assert service["environment"]["MODELLEDGER_DATABASE_URL"] == api_store
        assert service.get("deploy", {}).get("replicas", 1) == 1
    worker = services["worker"]
    assert worker["volumes"] == [f"datasets:{worker['environment']['MODELLEDGER_DATASETS_DIR']}:ro"]
    assert {"OPENAI_API_KEY", "HF_TOKEN"} <= worker["environment"].keys()
    relay = services["relay"]
    assert relay["environment"]["MODELLEDGER_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert relay["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_runs_in_kraft_mode_and_advertises_its_service_name() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


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


def test_the_image_copies_every_package_the_project_installs() -> None:
    # Given the packages pyproject.toml installs (processes/ was once left out of the image,
    # so every command in it failed on import)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    # Then the image's builder copies each of them
    copied = re.findall(r"^COPY (\S+)/ ", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert sorted(packages) == sorted(copied)
