"""Secrets a setting gives, else generated once into the data directory (mode 0600), as
``admin.key`` is: the one that signs the web UI's sessions (``session.key``) and the one
that encrypts webhook signing secrets (``secrets.key``). Replicas share them through the
settings."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from adapters.file_modes import owner_only_file, owner_only_folder
from modelledger.settings import Settings

SESSION_SECRET_FILE = "session.key"
SECRETS_KEY_FILE = "secrets.key"
MIN_LENGTH = 32


def session_secret(settings: Settings) -> bytes:
    """``MODELLEDGER_SESSION_SECRET``, else ``DATA_DIR/session.key``."""
    path = settings.data_dir / SESSION_SECRET_FILE
    return _kept(settings.session_secret, path, lambda: secrets.token_urlsafe(48)).encode()


def secrets_key(settings: Settings) -> bytes:
    """``MODELLEDGER_SECRETS_KEY`` (a Fernet key), else ``DATA_DIR/secrets.key``."""
    path = settings.data_dir / SECRETS_KEY_FILE
    key = _kept(settings.secrets_key, path, lambda: Fernet.generate_key().decode()).encode()
    Fernet(key)  # (refused here, naming the setting's form, rather than at first use)
    return key


def _kept(configured: SecretStr | None, path: Path, make: Callable[[], str]) -> str:
    """The configured secret, else the file's (made on first use: the first of several
    processes to get there writes it, the others read it)."""
    if configured is not None:
        return configured.get_secret_value()
    if not path.exists():
        _write_once(path, make())
    owner_only_file(path)  # an earlier run's, perhaps with looser rights
    secret = path.read_text().strip()
    if len(secret) < MIN_LENGTH:  # (a truncated file would protect with next to nothing)
        raise ValueError(f"{path} holds no usable secret: delete it to make a new one")
    return secret


def _write_once(path: Path, secret: str) -> None:
    """Written whole under another name, then linked in: a process that reads it never
    finds it half written, and the first link wins."""
    owner_only_folder(path.parent, tighten=False)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:  # another process was first: its secret it is
        pass
    finally:
        draft.unlink()
