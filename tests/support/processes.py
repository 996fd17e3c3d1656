"""`python -m modelledger ...` as real processes for topology tests: start, wait, kill, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx2 as httpx

from tests.support.auth import TEST_ADMIN_KEY, bearer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ModelLedgerProcess:
    """One `modelledger` command with its own environment and log file."""

    args: list[str]
    env: dict[str, str]
    workdir: Path
    name: str
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def start(self) -> Self:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MODELLEDGER_")}
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelledger", *self.args],
                cwd=self.workdir,
                env={**base, **self.env, "PYTHONUNBUFFERED": "1"},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no batch finished, nothing committed that was not already."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class ApiProcess(ModelLedgerProcess):
    port: int = 0
    key: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=15.0, headers=bearer(self.key))

    def wait_healthy(self, seconds: float = 60.0) -> float:
        """Until /health answers: when it did (time.monotonic())."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code in (200, 503):
                    return time.monotonic()
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not answer /health:\n{self.output()}")

    def wait_projections_held(self, *others: ModelLedgerProcess, seconds: float = 60.0) -> None:
        """Until a live process holds every projection (a worker started elsewhere is up),
        as this API's admin report tells; ``others`` must keep running meanwhile."""
        deadline = time.monotonic() + seconds
        with self.client() as client:
            while True:
                for process in (self, *others):
                    assert process.process is not None, process.name
                    assert process.process.poll() is None, process.output()
                report = client.get("/api/v1/admin/projections").json()
                if all(entry.get("holder_alive") for entry in report):
                    return
                assert time.monotonic() < deadline, f"projections not held: {report}"
                time.sleep(0.1)


@contextmanager
def serving(workdir: Path, **settings: str) -> Iterator[ApiProcess]:
    """`modelledger serve` as a user runs it (uvicorn, real HTTP) in ``workdir``: its own
    data directory, the test admin key, no rate limit (429 is tested on its own), and
    any other MODELLEDGER_* ``settings``; healthy when it is given, stopped after."""
    port = free_port()
    env = {
        "MODELLEDGER_DATA_DIR": str(workdir / "data"),
        "MODELLEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
        "MODELLEDGER_RATE_LIMIT": "0",
        "MODELLEDGER_PORT": str(port),
        **settings,
    }
    api = ApiProcess(["serve"], env, workdir, "serve", port, TEST_ADMIN_KEY).start()
    try:
        api.wait_healthy()
        yield api
    finally:
        api.stop()
