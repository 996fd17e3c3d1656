"""The real server process: `python -m modelledger serve`, over real HTTP, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.support.auth import bearer

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0
# The admin key serve issued is in the feed too: these tests follow the models.
MODELS_CREATED_STREAM = "/api/v1/events/stream?type=ModelCreated"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def client(self) -> httpx.Client:
        """A client with the admin key `serve` issued into the empty data dir."""
        key = (self.data_dir / "admin.key").read_text().strip()
        return httpx.Client(base_url=self.base_url, timeout=10.0, headers=bearer(key))


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the server exited with {server.process.returncode} before it was healthy:\n"
                f"{server.output()}"
            )
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"GET /health did not answer 200 within {STARTUP_TIMEOUT_S} s:\n{server.output()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server process with its own port and data dir, started in tmp_path (so no .env is read)."""
    with served(tmp_path, tmp_path / "data", tmp_path / "server.log") as running:
        yield running


@contextmanager
def served(cwd: Path, data_dir: Path, log: Path) -> Iterator[Server]:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("MODELLEDGER_")}
    env |= {
        "MODELLEDGER_HOST": "127.0.0.1",
        "MODELLEDGER_PORT": str(port),
        "MODELLEDGER_DATA_DIR": str(data_dir),
        "MODELLEDGER_WORKERS": "1",
        "MODELLEDGER_LOG_FORMAT": "json",
        "MODELLEDGER_ACCESS_LOG": "true",
        # A setting since removed, as an older deployment still sets it: never fatal.
        "MODELLEDGER_MODEL_ANSWERS_SIZE": "100000",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelledger", "serve"],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, f"http://127.0.0.1:{port}", data_dir, log)
    try:
        wait_until_healthy(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SHUTDOWN_TIMEOUT_S)


@pytest.mark.slow
def test_the_server_runs_the_model_lifecycle_and_stops_cleanly(server: Server) -> None:
    # Given a server started from the command line with an empty data dir
    with server.client() as http:
        # When a model is created, trained, completed and deployed over real HTTP
        created = http.post(
            "/api/v1/models",
            json={"name": "smoke-model", "task": "classification", "framework": "pytorch"},
        )
        assert created.status_code == 201, created.text
        model_id = created.json()["id"]

        started = http.post(f"/api/v1/models/{model_id}/train", json={"dataset": "s3://d/1"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]

        completed = http.post(
            f"/api/v1/models/{model_id}/training-runs/{run_id}/complete",
            json={"metrics": {"accuracy": 0.93}},
        )
        assert completed.status_code == 200, completed.text
        assert completed.json()["model_version"] == 1

        deployed = http.post(f"/api/v1/models/{model_id}/deploy", json={"environment": "prod"})
        assert deployed.status_code == 200, deployed.text
        assert deployed.headers["etag"] == '"4"'

        # Then the history tells the whole story, in order
        history = http.get(f"/api/v1/models/{model_id}/history")
        assert history.status_code == 200, history.text
        items = history.json()["items"]
        assert [item["type"] for item in items] == [
            "ModelCreated",
            "TrainingStarted",
            "ModelTrained",
            "ModelDeployed",
        ]
        assert [item["version"] for item in items] == [1, 2, 3, 4]
        positions = [item["position"] for item in items]
        assert positions == sorted(positions)

        # and errors over the wire are problem+json too
        missing = http.get("/api/v1/models/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

    # and the events live in a SQLite file under the data dir
    assert (server.data_dir / "modelledger.sqlite").is_file(), list(server.data_dir.iterdir())

    # When the server is sent SIGTERM
    server.process.send_signal(signal.SIGTERM)
    # Then it exits cleanly within the bound
    try:
        returncode = server.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit within {SHUTDOWN_TIMEOUT_S} s of SIGTERM")
    # (uvicorn finishes its graceful shutdown, then re-raises the signal it caught, so the
    # exit status is "terminated by SIGTERM" rather than 0; both mean a clean stop)
    assert returncode in (0, -signal.SIGTERM), server.output()
    output = server.output()
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output, output


@dataclass(frozen=True)
class StreamedEvent:
    id: int
    type: str
    data: dict[str, Any]


def next_events(lines: Iterator[str], count: int) -> list[StreamedEvent]:
    """Parse server-sent events off the wire (comments are keep-alive pings)."""
    events: list[StreamedEvent] = []
    fields: dict[str, str] = {}
    while len(events) < count:
        line = next(lines)
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if fields:
            events.append(
                StreamedEvent(int(fields["id"]), fields["event"], json.loads(fields["data"]))
            )
            fields = {}
    return events


def create(http: httpx.Client, name: str) -> dict[str, Any]:
    body = {"name": name, "task": "classification", "framework": "pytorch"}
    response = http.post("/api/v1/models", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.slow
def test_the_event_stream_is_live_and_resumes_after_the_last_event_id(server: Server) -> None:
    with server.client() as http:
        # Given a model created before anyone listens
        first = create(http, "streamed-1")
        # When a client opens the stream from the start
        with http.stream("GET", MODELS_CREATED_STREAM) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            # Then it gets what was stored, and then a model created while it listens, live
            (created,) = next_events(lines, 1)
            second = create(http, "streamed-2")
            (live,) = next_events(lines, 1)
        assert (created.id, created.type) == (first["position"], "ModelCreated")
        assert (
            created.data["model_id"] == first["id"] and created.data["data"]["name"] == "streamed-1"
        )
        assert (live.id, live.type, live.data["model_id"]) == (
            second["position"],
            "ModelCreated",
            second["id"],
        )
        # And a client that reconnects with Last-Event-ID goes on after that event
        resumed = {"Last-Event-ID": str(created.id)}
        with http.stream("GET", MODELS_CREATED_STREAM, headers=resumed) as stream:
            (again,) = next_events(stream.iter_lines(), 1)
        assert again.id == live.id


@pytest.mark.slow
def test_serve_issues_an_admin_key_into_an_empty_store(server: Server) -> None:
    # Given a server started with an empty data dir and no MODELLEDGER_ADMIN_KEY
    key_file = server.data_dir / "admin.key"
    key = key_file.read_text().strip()
    # Then it issued an admin key, kept it for its owner only, and printed it once
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert server.output().count(key) == 1
    # and without a key only /health answers
    assert httpx.get(f"{server.base_url}/health").status_code == 200
    refused = httpx.get(f"{server.base_url}/api/v1/models")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    # while the issued key is an admin's
    with server.client() as http:
        assert http.get("/api/v1/models").status_code == 200
        listed = http.get("/api/v1/admin/keys", params={"min_position": 1}).json()["items"]
        assert [(k["name"], k["role"], k["issued_by"]) for k in listed] == [
            ("admin", "admin", "serve")
        ]


@pytest.mark.slow
def test_a_stream_ends_when_its_key_is_revoked(server: Server) -> None:
    with server.client() as admin:
        # Given a viewer listening to the live feed
        issued = admin.post("/api/v1/admin/keys", json={"name": "tv", "role": "viewer"}).json()
        listener = httpx.Client(
            base_url=server.base_url, timeout=10.0, headers=bearer(issued["key"])
        )
        with listener, listener.stream("GET", MODELS_CREATED_STREAM) as stream:
            lines = stream.iter_lines()
            first = create(admin, "before-revocation")
            (seen,) = next_events(lines, 1)
            assert seen.id == first["position"]
            # When an admin revokes its key
            assert admin.delete(f"/api/v1/admin/keys/{issued['id']}").status_code == 200
            create(admin, "after-revocation")
            # Then the stream ends, with nothing after the revocation
            rest = list(lines)
        assert not any("after-revocation" in line for line in rest)


@pytest.mark.slow
def test_logs_are_json_lines_that_carry_the_correlation_id(server: Server) -> None:
    with server.client() as http:
        # When a command is sent with a correlation id, and another without
        sent = http.post(
            "/api/v1/models",
            json={"name": "logged", "task": "t", "framework": "f"},
            headers={"X-Correlation-ID": "trace-42"},
        )
        unnamed = http.get("/api/v1/models")
    # Then each answer names its correlation id, and the event records it
    assert sent.headers["x-correlation-id"] == "trace-42"
    generated = unnamed.headers["x-correlation-id"]
    assert generated and generated != "trace-42"
    with server.client() as http:
        history = http.get(f"/api/v1/models/{sent.json()['id']}/history").json()["items"]
    assert history[0]["correlation_id"] == "trace-42"
    # and the server's log lines are JSON, the access lines with the request's correlation id
    deadline = time.monotonic() + 5
    while True:
        records = [
            json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
        ]
        access = [r for r in records if r.get("logger") == "modelledger.access"]
        ids = {r.get("correlation_id") for r in access}
        if {"trace-42", generated} <= ids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {"trace-42", generated} <= ids, access[-5:]
    assert all({"timestamp", "level", "event"} <= r.keys() for r in records)
    # and one access line per request: uvicorn's own stays off (the worker processes too)
    assert not [r for r in records if r.get("logger") == "uvicorn.access"]


@pytest.mark.slow
def test_a_removed_setting_is_named_in_a_warning_and_the_server_serves(server: Server) -> None:
    # Given a server started with MODELLEDGER_MODEL_ANSWERS_SIZE set (the fixture), serving
    with server.client() as http:
        assert http.get("/api/v1/models").status_code == 200
    # Then its log has one warning naming the setting and what replaced it
    records = [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]
    warned = [
        r for r in records
        if r.get("level") == "warning" and "MODELLEDGER_MODEL_ANSWERS_SIZE" in json.dumps(r)
    ]  # fmt: skip
    assert len(warned) == 1, records
    assert "MODELLEDGER_ANSWER_CACHE_MB" in json.dumps(warned[0])


def log_records(server: Server) -> list[dict[str, Any]]:
    lines = server.log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.slow
def test_a_restarted_server_starts_with_the_registry_in_its_answer_cache(
    server: Server, tmp_path: Path
) -> None:
    # Given three models registered through a server, which is then stopped
    with server.client() as http:
        made = [
            http.post("/api/v1/models", json={"name": name, "task": "t", "framework": "f"})
            for name in ("alpha", "beta", "gamma")
        ]
    ids = [m.json()["id"] for m in made]
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    # When a server starts again on the same data
    with served(tmp_path, server.data_dir, tmp_path / "again.log") as again:
        deadline = time.monotonic() + 15
        while not (warmed := [r for r in log_records(again) if "warmed" in r["event"]]):
            assert time.monotonic() < deadline, again.output()
            time.sleep(0.1)
        # Then it has filled its answer cache with them, in the background
        assert "answer cache warmed with 3 models" in warmed[0]["event"], warmed
        # and reads of each are answered from it, each at its version
        with again.client() as http:
            got = [http.get(f"/api/v1/models/{model_id}") for model_id in ids]
            metrics = http.get("/metrics").text
        assert [g.json()["name"] for g in got] == ["alpha", "beta", "gamma"]
        assert all(g.headers["etag"] == '"1"' for g in got)
        hits = re.search(r'answer_cache_lookups_total\{result="hit"\} (\S+)', metrics)
        assert hits is not None and float(hits.group(1)) >= 3, metrics
