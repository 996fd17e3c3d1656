"""``mledger``: the registry from a shell or a CI job (``pip install
'modelledger-client[cli]'``). Tables by default, ``--json`` for scripts.

Exit codes: 0 done; 2 usage; 3 not found; 4 conflict or precondition failed; 5 invalid
request; 6 unauthorized or forbidden; 7 unavailable or rate limited after the client's
retries; 1 anything else.
"""

from __future__ import annotations

import sys

from modelledger_client.cli import changes, reading
from modelledger_client.cli.app import app

__all__ = ["app", "changes", "main", "reading"]


def main() -> None:
    sys.exit(app())  # (typer exits 2 on a usage error)
