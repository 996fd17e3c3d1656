"""The documentation site built as `make docs` builds it, into a directory of the test's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).parent / "mkdocs"


def build_site(into: Path) -> str:
    """Build it strictly; what mkdocs said, after failing the test if it was not clean."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # (Material's banner is about MkDocs 2)
    done = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(into)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "WARNING" not in said, said
    return said
