"""MLflow's model registry for the side-by-side benchmark: its own virtualenv (not a
dependency of the project), `mlflow server` on the same PostgreSQL as ModelLedger (its
own database), and a seed written straight into its tables.

The server runs as MLflow's docs advise for production: gunicorn with sync workers
(4 gave its best throughput on this 2-core machine: about twice its default uvicorn
setup), the job runner off (it only serves MLflow's background jobs).
"""

from __future__ import annotations

import fcntl
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psycopg

from bench.service import BenchError, free_port, fresh_database

MLFLOW_VERSION = "3.17.2"
VENV = Path(__file__).resolve().parent / ".mlflow" / "venv"
EXPERIMENT = "bench"


def ensure_mlflow(
    echo: Callable[[str], None] = print,
    venv: Path = VENV,
    extra: Sequence[str] = (),
    output: IO[bytes] | None = None,
) -> Path:
    """The `mlflow` executable of ``venv`` (bench/.mlflow/venv), installed on first use
    with ``extra`` packages beside MLflow (pip writing to ``output``, else to ours).
    Parallel test workers share one install: the first takes a file lock and installs,
    the others wait on the lock and find it done.
    """
    mlflow = venv / "bin" / "mlflow"
    marker = venv / (f".mlflow-{MLFLOW_VERSION}" + "".join(f"+{p}" for p in sorted(extra)))
    if marker.exists() and mlflow.exists():
        return mlflow
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or we die)
        if marker.exists() and mlflow.exists():
            return mlflow
        echo(f"installing mlflow {MLFLOW_VERSION} into {venv} (once; a minute or two)")
        made = [sys.executable, "-m", "venv", str(venv)]
        subprocess.run(made, check=True, stdout=output, stderr=output)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        packages = [f"mlflow=={MLFLOW_VERSION}", "psycopg2-binary==2.9.13", *extra]
        subprocess.run([*pip, *packages], check=True, stdout=output, stderr=output)
        marker.touch()
    return mlflow


@dataclass
class MlflowServer:
    proc: subprocess.Popen[bytes]
    port: int
    dsn: str  # its PostgreSQL database, for the seed

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running_mlflow(
    pg_url: str, workers: int, workdir: Path, timeout_s: float = 120.0
) -> Iterator[MlflowServer]:
    mlflow = ensure_mlflow()
    with fresh_database(pg_url, "mlflow_bench") as dsn:
        port = free_port()
        store = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        command = [
            str(mlflow), "server", "--backend-store-uri", store,
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--gunicorn-opts", "--no-control-socket --log-level warning --timeout 120",
        ]  # fmt: skip
        with (workdir / "mlflow.log").open("wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = MlflowServer(proc, port, dsn)
        try:
            _wait_healthy(server, workdir / "mlflow.log", timeout_s)
            yield server
        finally:
            _stop(proc)


def _wait_healthy(server: MlflowServer, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"mlflow server exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                for _ in range(8):  # every worker up and warm, not only the first
                    httpx.get(f"{server.base_url}/version", timeout=10.0)
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise BenchError(f"mlflow server did not answer /health in {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# -- the seed: N registered models, each with a finished run, accuracy, version 1 --


COLUMNS = {
    "registered_models": "name, creation_time, last_updated_time, description, workspace",
    "registered_model_tags": "key, value, name, workspace",
    "runs": "run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
    "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, "
    "deleted_time",
    "tags": "key, value, run_uuid",
    "metrics": "key, value, timestamp, run_uuid, step, is_nan",
    "latest_metrics": "key, value, timestamp, step, is_nan, run_uuid",
    "model_versions": "name, version, creation_time, last_updated_time, description, user_id, "
    "current_stage, source, run_id, status, status_message, run_link, storage_location, "
    "workspace",
}


@dataclass(frozen=True)
class SeedModel:
    name: str
    team: str
    status: str
    accuracy: float


def seed_mlflow(dsn: str, models: Sequence[SeedModel]) -> str:
    """Write the models into MLflow's tables with COPY (the REST API would take half an
    hour for 100,000 models with their runs); the experiment's id."""
    now = int(time.time() * 1000)
    with psycopg.connect(dsn) as conn:
        experiment = _experiment(conn, now)
        rows: dict[str, io.StringIO] = {table: io.StringIO() for table in COLUMNS}
        for i, model in enumerate(models):
            _write_rows(rows, model, experiment, now - (len(models) - i))
        with conn.cursor() as cur:
            for table, columns in COLUMNS.items():
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(rows[table].getvalue())
        conn.commit()
        conn.execute("ANALYZE")
    return experiment


def _experiment(conn: psycopg.Connection, now: int) -> str:
    found = conn.execute(
        "SELECT experiment_id FROM experiments WHERE name = %s", (EXPERIMENT,)
    ).fetchone()
    if found is not None:
        return str(found[0])
    made = conn.execute(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time, workspace) VALUES (%s, '', 'active', %s, %s, 'default') "
        "RETURNING experiment_id",
        (EXPERIMENT, now, now),
    ).fetchone()
    assert made is not None
    conn.execute(
        "UPDATE experiments SET artifact_location = %s WHERE experiment_id = %s",
        (f"mlflow-artifacts:/{made[0]}", made[0]),
    )
    return str(made[0])


def _write_rows(rows: dict[str, io.StringIO], m: SeedModel, experiment: str, ts: int) -> None:
    run = uuid.uuid4().hex
    source = f"runs:/{run}/model"
    rows["registered_models"].write(f"{m.name}\t{ts}\t{ts}\tseeded\tdefault\n")
    rows["registered_model_tags"].write(f"team\t{m.team}\t{m.name}\tdefault\n")
    rows["registered_model_tags"].write(f"status\t{m.status}\t{m.name}\tdefault\n")
    rows["runs"].write(
        f"{run}\t{m.name}-v1\tUNKNOWN\t\t\t\tFINISHED\t{ts}\t{ts}\t\tactive\t"
        f"mlflow-artifacts:/{experiment}/{run}/artifacts\t{experiment}\t\\N\n"
    )
    rows["tags"].write(f"mlflow.runName\t{m.name}-v1\t{run}\nmodel_name\t{m.name}\t{run}\n")
    rows["metrics"].write(f"accuracy\t{m.accuracy}\t{ts}\t{run}\t0\tf\n")
    rows["latest_metrics"].write(f"accuracy\t{m.accuracy}\t{ts}\t0\tf\t{run}\n")
    rows["model_versions"].write(
        f"{m.name}\t1\t{ts}\t{ts}\t\t\tNone\t{source}\t{run}\tREADY\t\\N\t\t{source}\tdefault\n"
    )
