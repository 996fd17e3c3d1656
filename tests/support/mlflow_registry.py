"""A real MLflow server for the import tests, and a client process to drive it.

MLflow is not a dependency of the project: ``bench.mlflow_server.ensure_mlflow``
installs it into bench/.mlflow/venv on first use (a minute or two, under a file lock
that parallel workers share). ``install_in_background`` starts that install as soon as
a session knows it will need MLflow, so the fixtures mostly just wait for it.

``running_mlflow(workdir, plan)`` starts ``mlflow server`` on a SQLite file in
``workdir``, and beside it ``mlflow_client_process.py`` in MLflow's interpreter (its
import takes seconds: one process answers every call), writes ``plan`` (a seed from
tests.support.mlflow_seed) and yields an ``MlflowInstance``. It raises
``MlflowUnavailable`` when MLflow cannot be installed or started: the fixtures skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.mlflow_server import VENV, ensure_mlflow
from bench.service import free_port
from tests.support.mlflow_seed import SeedRegistry, from_json, to_json, write_seed

CLIENT_SCRIPT = Path(__file__).with_name("mlflow_client_process.py")
START_TIMEOUT_S = 180.0  # a loaded 2-core machine starting several servers at once
CALL_TIMEOUT_S = 120.0
QUIET = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # the job runner serves nothing here
    "MLFLOW_DISABLE_TELEMETRY": "true",  # and no phoning home
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",  # a failing call answers now, not in minutes
}


def mlflow_env(**extra: str) -> dict[str, str]:
    """The environment of MLflow's processes: quiet, and without our PYTHONPATH (the
    project's top-level packages must not shadow anything in MLflow's venv)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **QUIET, **extra}


class MlflowUnavailable(Exception):
    """MLflow could not be installed or started; the message says why."""


# -- installing, once per machine, early -------------------------------------------------

_install: threading.Thread | None = None
_install_error: list[str] = []
INSTALL_LOG = VENV.parent / "install.log"


def install_in_background() -> None:
    """Start installing MLflow (if it is not) while the session's first tests run."""
    global _install
    if _install is None:
        _install = threading.Thread(target=_install_now, name="mlflow-install")
        _install.start()


def _install_now() -> None:
    try:
        _ensure()
    except MlflowUnavailable as error:
        _install_error.append(str(error))


def wait_for_mlflow() -> Path:
    """The `mlflow` executable, once the install (ours or another worker's) is done."""
    if _install is not None:
        _install.join()
    if _install_error:
        raise MlflowUnavailable(_install_error[0])
    return _ensure()


def _ensure() -> Path:
    """ensure_mlflow, with pip's chatter in bench/.mlflow/install.log, not in pytest's."""
    INSTALL_LOG.parent.mkdir(parents=True, exist_ok=True)
    with INSTALL_LOG.open("ab") as log:
        try:
            return ensure_mlflow(echo=lambda _: None, output=log)
        except (OSError, subprocess.CalledProcessError) as error:
            tail = INSTALL_LOG.read_text(errors="replace")[-1500:]
            raise MlflowUnavailable(f"installing MLflow failed: {error}\n{tail}") from error


# -- the client process ---------------------------------------------------------------------


class MlflowClientError(Exception):
    """MLflow's client raised: ``error_code`` is MLflow's (RESOURCE_DOES_NOT_EXIST...)."""

    def __init__(self, verb: str, kind: str, message: str, error_code: str) -> None:
        super().__init__(f"{verb}: {kind}: {message}")
        self.kind = kind
        self.message = message
        self.error_code = error_code


class MlflowClientProcess:
    """``mlflow.MlflowClient`` in MLflow's interpreter, one JSON line per call."""

    def __init__(self, tracking_uri: str, log: Path) -> None:
        env = mlflow_env(MLFLOW_TRACKING_URI=tracking_uri)
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [str(VENV / "bin" / "python"), str(CLIENT_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        self._lock = threading.Lock()
        self.mlflow_version = ""

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.mlflow_version = self._read(timeout_s, "starting")["mlflow"]

    def call(self, verb: str, **args: Any) -> Any:
        """Run one client method; its result, or ``MlflowClientError``."""
        line = json.dumps({"verb": verb, "args": args}, allow_nan=False) + "\n"
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
            answer = self._read(CALL_TIMEOUT_S, verb)
        if not answer["ok"]:
            e = answer["error"]
            raise MlflowClientError(verb, e["type"], e["message"], e["error_code"])
        return answer["result"]

    def _read(self, timeout_s: float, verb: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            code = self.proc.poll()
            raise MlflowUnavailable(f"the MLflow client process ({verb}): exit code {code}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the end of its input: it exits
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)
            _stop(self.proc)

    # typed shorthands for the verbs tests use most

    def create_experiment(self, name: str) -> str:
        return str(self.call("create_experiment", name=name))

    def log_run(
        self,
        experiment_id: str,
        run_name: str,
        metrics: dict[str, Any],
        params: dict[str, str],
        dataset: str | None = None,
        user: str | None = None,
    ) -> str:
        """``metrics``: name -> a value or its values by step; "NaN"/"Infinity" allowed."""
        args = {"metrics": metrics, "params": params, "dataset": dataset, "user": user}
        return str(self.call("log_run", experiment_id=experiment_id, run_name=run_name, **args))

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> dict[str, Any]:
        made: dict[str, Any] = self.call(
            "create_registered_model", name=name, description=description, tags=tags or {}
        )
        return made

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> int:
        made = self.call(
            "create_model_version",
            name=name,
            source=source,
            run_id=run_id,
            description=description,
            tags=tags or {},
        )
        return int(made["version"])

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None:
        self.call("set_registered_model_alias", name=name, alias=alias, version=version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.call("delete_registered_model_alias", name=name, alias=alias)

    def transition_model_version_stage(self, name: str, version: int, stage: str) -> None:
        self.call("transition_model_version_stage", name=name, version=version, stage=stage)

    def delete_run(self, run_id: str) -> None:
        self.call("delete_run", run_id=run_id)

    def delete_model_version(self, name: str, version: int) -> None:
        self.call("delete_model_version", name=name, version=version)

    def delete_registered_model(self, name: str) -> None:
        self.call("delete_registered_model", name=name)

    def update_registered_model(self, name: str, description: str) -> None:
        self.call("update_registered_model", name=name, description=description)

    def update_model_version(self, name: str, version: int, description: str) -> None:
        self.call("update_model_version", name=name, version=version, description=description)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.call("set_registered_model_tag", name=name, key=key, value=value)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.call("set_model_version_tag", name=name, version=version, key=key, value=value)

    def get_registered_model(self, name: str) -> dict[str, Any]:
        """name, created_ms, updated_ms, description, tags, aliases {alias: version}."""
        found: dict[str, Any] = self.call("get_registered_model", name=name)
        return found

    def search_model_versions(self, name: str) -> list[dict[str, Any]]:
        """A model's versions in version order: version, created_ms, updated_ms,
        description, tags, source, run_id, user_id, stage, status."""
        found: list[dict[str, Any]] = self.call("search_model_versions", name=name)
        return found

    def get_run(self, run_id: str) -> dict[str, Any]:
        """run_id, user_id, lifecycle_stage, start_time, metrics (latest; NaN as
        "NaN"), params, datasets (input names)."""
        found: dict[str, Any] = self.call("get_run", run_id=run_id)
        return found


# -- the server -----------------------------------------------------------------------------


@dataclass
class MlflowInstance:
    """What the fixtures yield: a running server, what it holds, and a client for it."""

    base_url: str
    seed: SeedRegistry  # empty for a scratch server
    client: MlflowClientProcess
    workdir: Path


@contextmanager
def running_mlflow(
    workdir: Path, plan: SeedRegistry | None = None, shared: Path | None = None
) -> Iterator[MlflowInstance]:
    """An MLflow server on a SQLite file in ``workdir``, holding ``plan`` if given.

    Seeding costs a server's start again in CPU: with ``shared`` (a directory every
    worker of the session sees), the first worker keeps its seeded database there and
    the others start from a copy of it, waiting for it if it is being written."""
    mlflow = wait_for_mlflow()
    if plan is None:
        with _serving(mlflow, workdir) as (base_url, client):
            yield MlflowInstance(base_url, SeedRegistry(()), client, workdir)
        return
    digest = hashlib.sha256(to_json(plan).encode()).hexdigest()[:12]
    kept = (shared or workdir) / f"mlflow-seed-{digest}"
    kept.mkdir(parents=True, exist_ok=True)
    with (kept / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held by the worker that seeds, until it is kept
        seed = _copied(kept, workdir)
        if seed is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)
        with _serving(mlflow, workdir) as (base_url, client):
            if seed is None:
                seed = write_seed(client, plan)
                _keep(seed, workdir, kept)
                fcntl.flock(lock, fcntl.LOCK_UN)
            yield MlflowInstance(base_url, seed, client, workdir)


def _copied(kept: Path, workdir: Path) -> SeedRegistry | None:
    """The kept seed, its database copied into ``workdir``; None if none is kept yet."""
    if not (kept / "seed.json").is_file():
        return None
    _copy_database(kept / "mlflow.db", workdir / "mlflow.db")
    return from_json((kept / "seed.json").read_text(encoding="utf-8"))


def _keep(seed: SeedRegistry, workdir: Path, kept: Path) -> None:
    _copy_database(workdir / "mlflow.db", kept / "mlflow.db")
    (kept / "seed.json.part").write_text(to_json(seed), encoding="utf-8")
    (kept / "seed.json.part").rename(kept / "seed.json")  # last: it says the copy is whole


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the server keeps the file open."""
    with closing(sqlite3.connect(source)) as read, closing(sqlite3.connect(target)) as write:
        read.backup(write)


@contextmanager
def _serving(mlflow: Path, workdir: Path) -> Iterator[tuple[str, MlflowClientProcess]]:
    """The server and, started beside it (its import overlaps the server's), a client."""
    proc, port = _start_server(mlflow, workdir)
    base_url = f"http://127.0.0.1:{port}"
    client = MlflowClientProcess(base_url, workdir / "client.log")
    try:
        _wait_healthy(proc, base_url, workdir / "server.log")
        client.wait_ready()
        yield base_url, client
    finally:
        client.close()
        _stop(proc)


def _start_server(mlflow: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [
        str(mlflow), "server",
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root", str(workdir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with (workdir / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=mlflow_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole
        )
    return proc, port


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise MlflowUnavailable(f"mlflow server exited ({proc.returncode}):\n{tail}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    _stop(proc)
    raise MlflowUnavailable(f"mlflow server did not answer /health in {START_TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    """Its process group: SIGTERM, then SIGKILL (nothing it holds outlives the tests)."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sent)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
