"""The secret that signs the web UI's sessions: ``MODELLEDGER_SESSION_SECRET``, or one
generated once into ``DATA_DIR/session.key`` (mode 0600), as ``admin.key`` is."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from adapters.file_modes import owner_only_file, owner_only_folder
from modelledger.settings import Settings

SESSION_SECRET_FILE = "session.key"
MIN_LENGTH = 32


def session_secret(settings: Settings) -> bytes:
    """The configured secret, else the data directory's (made on first use: the first
    of several processes to get there writes it, the others read it)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    path = settings.data_dir / SESSION_SECRET_FILE
    if not path.exists():
        _write_once(path)
    owner_only_file(path)  # an earlier run's, perhaps with looser rights
    secret = path.read_text().strip()
    if len(secret) < MIN_LENGTH:  # (a truncated file would sign with next to nothing)
        raise ValueError(f"{path} holds no usable secret: delete it to make a new one")
    return secret.encode()


def _write_once(path: Path) -> None:
    """Written whole under another name, then linked in: a process that reads it never
    finds it half written, and the first link wins."""
    owner_only_folder(path.parent, tighten=False)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:  # another process was first: its secret it is
        pass
    finally:
        draft.unlink()
