"""Write the synchronous client (``_sync/``) from the asynchronous one (``_async/``).

    .venv/bin/python clients/python/generate_sync.py

The async source is the one written by hand; run this after changing it and commit both.
A test generates into a scratch directory and fails when the committed copy differs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import unasync

PACKAGE = Path(__file__).parent / "src" / "modelledger_client"
ROOT = Path(__file__).parents[2]  # the repository, whose ruff settings the code follows
REPLACEMENTS = {
    "AsyncModelLedger": "ModelLedger",
    "AsyncSession": "Session",
    "AsyncClient": "Client",
    "AsyncBaseTransport": "BaseTransport",
    "aclose": "close",
    "aread": "read",
    "aiter_lines": "iter_lines",
    "asyncio": "time",  # (asyncio.sleep is all it uses: time.sleep)
    "_async": "_sync",
}
HEADER = "# Generated from ../_async by clients/python/generate_sync.py: do not edit.\n"


def generate(into: Path) -> list[Path]:
    """The sync modules, written under ``into`` (a copy of the package's layout)."""
    sources = sorted((PACKAGE / "_async").glob("*.py"))
    unasync.unasync_files(
        [str(path) for path in sources],
        rules=[
            unasync.Rule(
                str(PACKAGE / "_async") + "/",
                str(into / "_sync") + "/",
                additional_replacements=REPLACEMENTS,
            )
        ],
    )
    written = sorted((into / "_sync").glob("*.py"))
    for path in written:
        path.write_text(HEADER + path.read_text())
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([str(ruff), "format", "-q", *map(str, written)], check=True)
    subprocess.run(
        [str(ruff), "check", "-q", "--fix", "--select", "I,F401", *map(str, written)], check=True
    )
    return written


if __name__ == "__main__":
    for path in generate(PACKAGE):
        print(path)
