"""The API docs work for a user: `/docs` (Swagger UI) and `/redoc` load every script,
style and icon from the installed package under a policy that allows this origin
only, the document declares the bearer scheme (so "Authorize" and "Try it out" work),
and in a real browser that can reach nothing but the server, both pages render."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from tests.e2e.problems import MODELS
from tests.support.auth import TEST_ADMIN_KEY
from tests.support.browser import chromium
from tests.support.processes import ApiProcess

ROOT = Path(__file__).parents[2]
PAGES = ("/docs", "/redoc")
STATISTICS = "statistics_api_v1_models_statistics_get"  # its operationId
SETUP = "from setuptools import setup; setup()"  # pyproject.toml's settings, as a wheel's


def assets(page_html: str) -> list[str]:
    """What a page loads: its scripts, styles and icon."""
    return re.findall(r'(?:src|href)="([^"]+)"', page_html)


@pytest.mark.parametrize("page", PAGES)
def test_each_docs_page_loads_only_from_this_origin(memory_client: TestClient, page: str) -> None:
    # When a browser asks for a docs page
    response = TestClient(memory_client.app).get(page)  # no key needed
    # Then its policy allows this origin only
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'self';"), policy
    assert not re.search(r"https?:|\*|unsafe-", policy), policy
    assert "frame-ancestors 'none'" in policy
    # and every script, style and icon it names is served by the app itself
    named = assets(response.text)
    assert any(url.endswith(".js") for url in named) and any(".css" in u for u in named)
    for url in named:
        assert "//" not in url, url
        asset = memory_client.get(urljoin(page, url))
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "text/css",
            "image/png",
        ), url


def test_the_document_declares_the_bearer_scheme_where_a_key_is_needed(
    memory_client: TestClient,
) -> None:
    document = memory_client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"HTTPBearer": {**schemes["HTTPBearer"], "type": "http", "scheme": "bearer"}}
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert operations[("post", MODELS)]["security"] == [{"HTTPBearer": []}]
    assert operations[("get", "/api/v1/admin/keys")]["security"] == [{"HTTPBearer": []}]
    assert "security" not in operations[("get", "/health")]
    # and a missing key is still our 401 problem, not the framework's
    anonymous = TestClient(memory_client.app).get(MODELS)
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == "urn:modelledger:problem:unauthorized"


def test_the_assets_are_package_data(tmp_path: Path) -> None:
    # Given the package as setuptools builds it (what goes into the wheel); its metadata
    # written aside: rewritten in place, a concurrent test read the package's version as None
    built = tmp_path / "lib"
    metadata = ["egg_info", "--egg-base", str(tmp_path)]
    subprocess.run(
        [sys.executable, "-c", SETUP, "-q", *metadata, "build_py", "--build-lib", str(built)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    # Then every asset the pages name, and the licences, are in it
    from api.docs import REDOC_PAGE, SWAGGER_PAGE

    for url in assets(SWAGGER_PAGE + REDOC_PAGE):
        assert (built / "api" / url.replace("docs/", "", 1)).is_file(), url
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (built / "api" / "static" / licence).is_file(), licence


# -- in a real browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


class Visit:
    """A page in a fresh browser context: what it logged and where it tried to go."""

    def __init__(self, browser: object, served: ApiProcess) -> None:
        self.origin = served.base_url
        self.context = browser.new_context()  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.tried: list[str] = []
        self.stopped: list[str] = []  # by the page's policy, inside the browser
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))
        self.page.on("request", lambda request: self.tried.append(request.url))
        self.page.on("requestfailed", self._failed)

    def _failed(self, request: Any) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):
            self.stopped.append(request.url)

    def outside(self) -> list[str]:
        """What the page tried to fetch from anywhere but the server (and was not stopped)."""
        own = (self.origin, "blob:", "data:")
        return [url for url in self.tried if not url.startswith(own) and url not in self.stopped]

    def blocked(self) -> list[str]:
        """What the page's policy blocked (ReDoc's footer logo from its CDN may be: it then
        hides it, and the request never leaves the browser)."""
        return [
            text
            for text in self.console
            if "Content Security Policy" in text and "cdn.redoc.ly/redoc/logo-mini" not in text
        ]


@pytest.mark.slow
def test_swagger_ui_renders_and_authorize_lets_try_it_out_call_the_api(
    browser: object, served: ApiProcess
) -> None:
    # Given a browser that can reach nothing but the server
    visit = Visit(browser, served)
    page = visit.page
    # When a user opens /docs
    page.goto(f"{served.base_url}/docs#/queries/{STATISTICS}")  # a link to one operation
    # Then the operations render
    page.wait_for_selector(".opblock-summary", timeout=20_000)
    assert page.locator(".opblock").count() > 20
    # and "Authorize" offers the bearer scheme, which takes the key
    page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    assert "HTTPBearer" in dialog.inner_text() and "Bearer" in dialog.inner_text()
    dialog.locator("input").fill(TEST_ADMIN_KEY)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()
    # and "Try it out" on the statistics answers 200 with that key
    operation = page.locator(f"#operations-queries-{STATISTICS}")  # open: it was linked to
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    assert status.first.inner_text(timeout=20_000).strip() == "200"
    # with nothing blocked and nothing fetched from anywhere else
    assert visit.blocked() == [] and visit.outside() == []
    visit.context.close()


@pytest.mark.slow
def test_redoc_renders_and_searches(browser: object, served: ApiProcess) -> None:
    # Given a browser that can reach nothing but the server
    visit = Visit(browser, served)
    page = visit.page
    # When a user opens /redoc
    page.goto(f"{served.base_url}/redoc")
    # Then the reference renders, with its operations
    assert page.locator("h1").first.inner_text(timeout=20_000).startswith("ModelLedger")
    assert page.get_by_text("Register a model").count() > 0
    # and its search finds an operation
    page.fill("input[placeholder='Search...']", "deploy")
    results = page.locator("[data-role='search:results'] [role=menuitem]")
    results.first.wait_for(timeout=10_000)
    assert results.count() > 0
    # with nothing blocked and nothing fetched from anywhere else
    assert visit.blocked() == [] and visit.outside() == []
    visit.context.close()
