"""The OpenAPI document tells the truth: Schemathesis, run from outside against a served
registry with every check on (``st run <base>/openapi.json --checks all``), finds no answer
the document does not allow, no request it refuses that the document allows nor one it
accepts that the document refuses, and no 405 without every method of the path in Allow.

What no OpenAPI document can say (a stale If-Match, a reused Idempotency-Key, a
min_position past the end of the log...) is in ``schemathesis.toml`` at the repository
root, each with its reason; ``st run`` from the clone reads it too.

The four phases run in two ``st`` processes side by side (the coverage phase, which costs
the most; then examples, fuzzing and stateful), each with one worker: the same cases on
every run (a fixed seed, a bounded number of examples, no time budget). One worker because
Python 3.11.7's ast module can fail when threads parse at once (CPython gh-106905), which
Schemathesis's workers may do.

The tests in test_openapi_fuzz.py check each operation's answers in-process, faster and
with seeded models in every state; this one adds the checks of requests (accepted or
refused as documented), undeclared methods, Allow headers, authentication and the
stateful links, through a real HTTP server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.schemas import HubImportRequest
from tests.support.auth import TEST_ADMIN_KEY
from tests.support.fake_hub import FakeHub
from tests.support.processes import ApiProcess, serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(660)]  # st runs end within 600 s

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "schemathesis.toml"
ST = Path(sys.executable).with_name("st")
SEED = 17
MAX_EXAMPLES = 5  # random cases per operation and mode in the fuzzing phase; stateful scenarios
PHASES = ("coverage", "examples,fuzzing,stateful")  # the two processes
# The document's example import, which the stand-in Hub serves: it answers 201.
HUB_MODEL: str = HubImportRequest.model_json_schema()["examples"][0]["repo_id"]


@pytest.fixture(scope="module")
def served_with_a_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """`modelledger serve` as `make run` starts it, with a Hub of its own (one model)."""
    with FakeHub() as hub:
        hub.add_model(HUB_MODEL)
        with serving(
            tmp_path_factory.mktemp("conformance"), MODELLEDGER_HF_ENDPOINT=hub.url
        ) as api:
            yield api


def schemathesis(api: ApiProcess, phases: str, output: Path) -> subprocess.Popen[bytes]:
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{api.base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {TEST_ADMIN_KEY}",
    ]
    with output.open("wb") as sink:
        return subprocess.Popen(command, cwd=output.parent, stdout=sink, stderr=subprocess.STDOUT)


def failures(output: str) -> str:
    """What st found, without its progress lines."""
    start = output.find("=== FAILURES ===")
    start = output.find("=== ERRORS ===") if start < 0 else start
    return output[start - 30 :] if start >= 0 else output[-6000:]


def test_schemathesis_finds_nothing_the_document_does_not_say(
    served_with_a_hub: ApiProcess, tmp_path: Path
) -> None:
    # Given a served registry, and its OpenAPI document
    # When Schemathesis runs every check in all four phases
    outputs = [tmp_path / f"st-{number}.log" for number in range(len(PHASES))]
    runs = [
        schemathesis(served_with_a_hub, phases, output)
        for phases, output in zip(PHASES, outputs, strict=True)
    ]
    codes = [run.wait(timeout=600) for run in runs]
    # Then it finds no failure, no error and no answer outside the document
    found = {
        phases: failures(output.read_text(errors="replace"))
        for phases, output, code in zip(PHASES, outputs, codes, strict=True)
        if code != 0
    }
    assert not found, "\n\n".join(f"st --phases {p}:\n{text}" for p, text in found.items())
