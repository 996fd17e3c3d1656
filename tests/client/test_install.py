"""`pip install ./clients/python` in a fresh virtual environment gives a working client
and, with [cli], `mledger`; nothing of the server comes with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ApiProcess

pytestmark = pytest.mark.slow
CLIENT = Path(__file__).parents[2] / "clients" / "python"


def test_the_client_installs_alone_and_works(sqlite_server: ApiProcess, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # (a copy: building in place would leave build/ and egg-info in the checkout)
    source = tmp_path / "client"
    subprocess.run(["cp", "-r", str(CLIENT), str(source)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    subprocess.run([*pip, f"{source}[cli]"], check=True, timeout=600)
    python = str(venv / "bin" / "python")
    script = (
        "import sys\n"
        "from modelledger_client import ModelLedger\n"
        "with ModelLedger() as ledger:\n"
        "    made = ledger.register_model('installed', project='pip', task='t', framework='f')\n"
        "    print(ledger.get_model(made.id).name)\n"
        "try:\n"
        "    import modelledger\n"
        "except ImportError:\n"
        "    print('no server')\n"
    )
    env = {"MODELLEDGER_URL": sqlite_server.base_url, "MODELLEDGER_API_KEY": sqlite_server.key}
    done = subprocess.run(
        [python, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.split() == ["installed", "no", "server"], done.stderr
    listed = subprocess.run(
        [str(venv / "bin" / "mledger"), "--json", "models", "find", "pip", "installed"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert '"name": "installed"' in listed.stdout
