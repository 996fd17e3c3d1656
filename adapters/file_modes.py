"""The service's files are its owner's: data files 0600, their folders 0700.

The event log holds key hashes and the read tables every model, so no other user
of the machine may read them. A file is created with its mode (never left to the
umask) and one found with looser rights is tightened. SQLite creates a database's
-wal, -shm and -journal files with the database file's own mode (its unix VFS
copies it and sets it regardless of the umask), so a database file created 0600
keeps its companions 0600 too.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

OWNER_FILE = 0o600
OWNER_FOLDER = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
log = logging.getLogger("modelledger.files")


def owner_only_folder(path: Path, *, tighten: bool = True) -> None:
    """Create ``path`` 0700 (missing parents too); with ``tighten``, take the group's
    and others' rights off it if it was there already."""
    if not path.is_dir():
        path.mkdir(mode=OWNER_FOLDER, parents=True, exist_ok=True)
        os.chmod(path, OWNER_FOLDER)  # mkdir's mode passes through the umask
    elif tighten:
        _tighten(path)


def owner_only_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists; tighten it if it does."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, OWNER_FILE)
    except FileExistsError:
        _tighten(path)
        return
    try:
        os.fchmod(descriptor, OWNER_FILE)  # the umask may have taken more off
    finally:
        os.close(descriptor)


def owner_only_database(path: Path) -> None:
    """A SQLite database file (created empty, which SQLite takes as a new database)
    and the companion files an earlier run left, none readable by others. Its
    folder, if missing, is created 0700; an existing one is the operator's choice."""
    owner_only_folder(path.parent, tighten=False)
    owner_only_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion)


def _tighten(path: Path) -> None:
    """Take the group's and others' rights off ``path`` (the owner's stay as they are)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:  # a companion SQLite removed as we looked
        return
    if not current & 0o077:
        return
    try:
        os.chmod(path, current & ~0o077)
    except PermissionError:  # another user's file that we may use: say so, carry on
        log.warning("cannot take others' rights off %s (mode %o)", path, current)
