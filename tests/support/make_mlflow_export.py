"""Regenerates tests/fixtures/mlflow_export/: what MLflow's export tool writes for SMALL.

Run from the repository's root (it takes a few minutes the first time):

    PYTHONPATH=. .venv/bin/python -m tests.support.make_mlflow_export

It starts a scratch MLflow 3.17.2 (tests.support.mlflow_registry), writes
tests.support.mlflow_seed.SMALL into it, installs `mlflow-export-import==1.2.0` (the
PyPI release; it imports `tabulate` without declaring it, so that comes too) beside
MLflow 3.17.2 in bench/.mlflow/export-venv, and runs its `export-models --models all`,
which writes the runs of the models' versions too. The result is copied here without
what the reader does not need and would only make the fixture machine-specific: run
artifacts (the seed logs none), the temporary paths and the server's port (replaced by
fixed ones) and the exporting user. Everything else is as the tool wrote it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.mlflow_server import VENV, ensure_mlflow
from tests.support.mlflow_registry import mlflow_env, running_mlflow
from tests.support.mlflow_seed import SMALL

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow_export"
EXPORT_VENV = VENV.parent / "export-venv"
EXPORT_PACKAGES = ("mlflow-export-import==1.2.0", "tabulate==0.9.0")
STAND_INS = {"url": "http://127.0.0.1:5000", "workdir": "/srv/mlflow", "out": "/srv/export"}


def main() -> None:
    ensure_mlflow(venv=EXPORT_VENV, extra=EXPORT_PACKAGES)
    with tempfile.TemporaryDirectory(prefix="mlflow-export-") as tmp:
        workdir, out = Path(tmp) / "server", Path(tmp) / "export"
        workdir.mkdir()
        with running_mlflow(workdir, SMALL) as mlflow:
            export(mlflow.base_url, out)
            scrub(out, {mlflow.base_url: "url", str(workdir): "workdir", str(out): "out"})
        shutil.rmtree(FIXTURE, ignore_errors=True)
        shutil.copytree(out, FIXTURE)
    size = sum(f.stat().st_size for f in FIXTURE.rglob("*") if f.is_file())
    print(f"wrote {FIXTURE} ({size:,} bytes)")


def export(base_url: str, out: Path) -> None:
    env = mlflow_env(MLFLOW_TRACKING_URI=base_url)
    command = [str(EXPORT_VENV / "bin" / "export-models"), "--models", "all"]
    done = subprocess.run(
        [*command, "--output-dir", str(out)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0 or "ERROR" in done.stdout:
        sys.exit(f"export-models failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def scrub(out: Path, replaced: dict[str, str]) -> None:
    """Drop artifacts; put stand-ins for the temporary paths, the port and the user."""
    for artifacts in sorted(out.rglob("artifacts"), reverse=True):
        if artifacts.is_dir():
            shutil.rmtree(artifacts)
    for path in out.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        for real, stand_in in replaced.items():
            text = text.replace(real, STAND_INS[stand_in])
        data = json.loads(text)
        if isinstance(data.get("system"), dict):
            data["system"]["user"] = "exporter"
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
