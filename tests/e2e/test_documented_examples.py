"""The documentation's shell examples, run verbatim against a fresh `serve`, print what
their comments say (tests/support/shell_doc.py says how a document marks them).

A fresh `serve` in an empty directory, as `make run` starts on a new clone: it issues
the admin key into var/admin.key (position 1), and the examples read it from there.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ApiProcess, free_port
from tests.support.shell_doc import Session, StepTimedOut, matches, shell_blocks

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# Each is run on its own fresh `serve`: the README's tour, the tutorial and the guides with
# examples, with how many outputs each at least checks (a lost block is caught)
DOCUMENTS = {
    "README.md": 6,
    "docs/tutorial.md": 40,
    "docs/how-to/keys.md": 10,
    "docs/how-to/metric-definitions.md": 9,
    "docs/how-to/backup.md": 5,
    "docs/how-to/audit.md": 4,
    "docs/how-to/webhooks.md": 18,
    "docs/how-to/graphql.md": 12,
}
# What a document's `serve` is started with besides: the webhooks guide's receiver listens
# on 127.0.0.1, where deliveries go only when private targets are allowed
SERVE_SETTINGS = {
    "docs/how-to/webhooks.md": {"MODELLEDGER_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true"},
}
DOCUMENTED_ADDRESS = "http://127.0.0.1:8000"


@pytest.fixture
def fresh_serve(tmp_path: Path, document: str) -> Iterator[ApiProcess]:
    port = free_port()
    # The examples call the CLI as a reader of the clone would: .venv/bin/modelledger
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    settings = {"MODELLEDGER_PORT": str(port), **SERVE_SETTINGS.get(document, {})}
    served = ApiProcess(["serve"], settings, tmp_path, "serve", port)
    served.start()
    try:
        served.wait_healthy()
        yield served
    finally:
        served.stop()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_documented_examples_print_what_they_say(
    document: str, fresh_serve: ApiProcess
) -> None:
    text = (ROOT / document).read_text().replace(DOCUMENTED_ADDRESS, fresh_serve.base_url)
    blocks = shell_blocks(text)
    assert blocks, f"{document} has no runnable shell examples"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLEDGER_")}
    session = Session(fresh_serve.workdir, {**env, "MODELLEDGER_PORT": str(fresh_serve.port)})
    wrong: list[str] = []
    checked = 0
    try:
        for block in blocks:
            for step in block.steps:
                where = f"{document}:{step.line}: {step.command.splitlines()[0]}"
                try:
                    status, printed = session.run(step.command)
                except StepTimedOut as error:
                    pytest.fail("\n".join([*wrong, f"{where}\n  {error}"]))
                if status != 0:
                    wrong.append(f"{where}\n  exited {status}: {printed[-500:]}")
                elif step.expected is not None:
                    checked += 1
                    if not matches(step.expected, printed):
                        wrong.append(f"{where}\n  says:   {step.expected}\n  prints: {printed}")
    finally:
        _stop_background(session)
        session.close()
    assert not wrong, "\n".join(wrong)
    least = DOCUMENTS[document]
    assert checked >= least, f"only {checked} examples in {document} say what they print"


def _stop_background(session: Session) -> None:
    """What an example started in the background and left running, when a step timed out
    before the one that stops it (the webhooks guide's receiver): not to outlive the test."""
    shell = session.process.pid
    children = Path(f"/proc/{shell}/task/{shell}/children")
    for child in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGTERM)
