"""Starting and stopping the ModelLedger server under test, and its PostgreSQL databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil  # type: ignore[import-untyped]
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

BENCH_KEY = "bench-admin-key-0123456789abcdef0123456789"


def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {BENCH_KEY}"}


HOST = "127.0.0.1"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
BENCH_DB = "modelledger_bench"
REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# Service lifecycle
# --------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A run could not be carried out (server did not start, bad option...)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_server(
    database_url: str,
    workers: int,
    workdir: Path,
    timeout_s: float,
    extra_env: dict[str, str] | None = None,
    command: tuple[str, ...] = ("serve",),
) -> Iterator[Server]:
    """Start the service (or another `modelledger` command: `project`, `relay`) on a
    store; always stop it, even on Ctrl-C. Only `serve` is waited for (on /health)."""
    port = free_port()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MODELLEDGER_DATABASE_URL": database_url,
        "MODELLEDGER_PORT": str(port),
        "MODELLEDGER_WORKERS": str(workers),
        "MODELLEDGER_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    # The load comes from one key: authenticated like any client, not rate limited
    # (the benchmarks measure the service, not the limiter; MODELLEDGER_RATE_LIMIT
    # in the shell still wins).
    env["MODELLEDGER_ADMIN_KEY"] = BENCH_KEY
    env.setdefault("MODELLEDGER_RATE_LIMIT", "0")
    env.update(extra_env or {})
    # Each worker holds an event-store pool and a read pool, each up to size +
    # overflow connections; at the defaults (20 + 20) two workers can ask for 160,
    # beyond PostgreSQL's default max_connections of 100.
    env.setdefault("MODELLEDGER_DB_POOL_SIZE", "10")
    env.setdefault("MODELLEDGER_DB_MAX_OVERFLOW", "10")
    log_path = workdir / f"{command[0]}.log"
    with log_path.open("wb") as log:
        # Own session so SIGTERM reaches the uvicorn worker processes as well.
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelledger", *command],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, port, log_path)
    try:
        if command[0] == "serve":
            wait_healthy(server, timeout_s)
        yield server
    finally:
        stop_server(proc)


def wait_healthy(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        if _health_ok(server.base_url):
            return
        time.sleep(0.2)
    raise BenchError(f"server not healthy after {timeout_s:.0f}s:\n{server.log_tail()}")


def _health_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (we created it), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    _reap_group(proc.pid)


def _reap_group(pgid: int) -> None:
    """Workers may outlive a parent that exited on SIGTERM; kill our leftovers."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def server_cpu_seconds(pid: int) -> float:
    """CPU of the server and its live workers (uvicorn forks/spawns them)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


# --------------------------------------------------------------------------
# PostgreSQL helpers
# --------------------------------------------------------------------------


def check_loopback_pg(pg_url: str) -> None:
    """The benchmark may only talk to this machine."""
    parts = urlsplit(pg_url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise BenchError("--pg-url must be a postgresql:// URL")
    host = conninfo_to_dict(pg_url).get("host")
    if host not in LOOPBACK_HOSTS:
        raise BenchError(f"--pg-url host must be one of {sorted(LOOPBACK_HOSTS)}, got {host!r}")


def with_database(pg_url: str, dbname: str) -> str:
    parts = urlsplit(pg_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextmanager
def fresh_database(pg_url: str, dbname: str = BENCH_DB) -> Iterator[str]:
    """Create an empty database for one run and drop it afterwards."""
    _recreate(pg_url, dbname, create=True)
    try:
        yield with_database(pg_url, dbname)
    finally:
        _recreate(pg_url, dbname, create=False)


def maintenance_connection(dsn: str) -> psycopg.Connection[Any]:
    """Opened before the servers start: their pools may hold every other connection
    the server allows by the time maintenance is due ("too many clients")."""
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def vacuum_analyze(conn: psycopg.Connection[Any]) -> None:
    """What autovacuum would do between bursts of writes: statistics for the planner
    and dead rows reclaimed. Benchmarks call it on every database they compare, the
    same way (autovacuum may be off on the server, and a bulk load leaves no stats)."""
    conn.execute("VACUUM ANALYZE")


def _recreate(pg_url: str, dbname: str, create: bool) -> None:
    ident = sql.Identifier(dbname)
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        # FORCE: a killed server may leave sessions that would block the drop.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
