"""`make docs-screenshots`: a picture of each page of the web UI for its guide
(docs/how-to/web-ui.md), taken from a fresh `serve` with a small registry in it, by
Debian's chromium. Not part of the staleness tests: run it when the pages change."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import serving

PAGES = {
    "catalogue": "/ui/models",
    "model": "/ui/models/{model}",
    "compare": "/ui/models/{model}/compare?a=1&b=2",
    "leaderboard": "/ui/leaderboard?metric=accuracy",
    "statistics": "/ui/statistics",
    "activity": "/ui/activity",
}


def registry(api: Any) -> str:
    """A few models with versions and deployments; the id of the one shown."""
    shown = ""
    for name, project, scores in (
        ("fraud-detector", "payments", (0.91, 0.94, 0.96)),
        ("churn-predictor", "retention", (0.82, 0.85)),
        ("receipt-reader", "payments", (0.88,)),
    ):
        body = {
            "name": name,
            "project": project,
            "task": "classification",
            "framework": "pytorch",
            "tags": ["tabular"],
            "description": f"The {name}",
        }
        model = api.post("/api/v1/models", json=body).json()
        url = f"/api/v1/models/{model['id']}"
        for score in scores:
            run = api.post(f"{url}/train", json={"dataset": "s3://data/2026-12"}).json()
            metrics = {"accuracy": score, "latency_ms": round(40 - 20 * score, 1)}
            done = api.post(
                f"{url}/training-runs/{run['run_id']}/complete", json={"metrics": metrics}
            ).json()
        api.post(f"{url}/deploy", json={"environment": "staging"})
        shown = shown or model["id"]
    api.get("/api/v1/models", params={"min_position": done["position"] + 3})
    return shown


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir, serving(Path(workdir)) as served:
        with served.client() as api:
            model = registry(api)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{served.base_url}/ui/login")
            page.screenshot(path=out / "login.png")
            page.get_by_label("API key").fill(served.key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{served.base_url}/ui/models")
            for name, path in PAGES.items():
                page.goto(served.base_url + path.format(model=model))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=out / f"{name}.png", full_page=True)
                print(f"{out / name}.png", file=sys.stderr)
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images/ui")
