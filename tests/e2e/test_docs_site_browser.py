"""The documentation site in a real browser that can reach nothing but the server the
site is on: its pages render with their scripts and styles, its search finds pages, and
nothing is fetched from another origin (a script may fetch what no tag names)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.browser import chromium
from tests.support.docs_site import build_site

pytestmark = pytest.mark.slow
PAGES = ("index.html", "tutorial.html", "reference/http-api.html", "explanation/consistency.html")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # (the base's names)
        pass


@pytest.fixture(scope="module")
def site_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    built = tmp_path_factory.mktemp("site")
    build_site(built)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=built))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_pages_render_and_search_finds_a_page_with_nothing_from_elsewhere(
    browser: object, site_origin: str
) -> None:
    page = browser.new_context().new_page()  # type: ignore[attr-defined]
    tried: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: tried.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    # When a reader opens some pages
    for path in PAGES:
        page.goto(f"{site_origin}/{path}")
        # Then each renders in the theme, its navigation built by its script
        page.wait_for_selector("nav.md-nav", timeout=20_000)
        assert page.locator("article h1").count() == 1, path
    # and search, asked for a word of the tutorial, lists pages
    page.goto(f"{site_origin}/index.html")
    page.keyboard.press("/")
    page.keyboard.type("rollback")
    page.wait_for_selector(".md-search-result__item", timeout=20_000)
    assert page.locator(".md-search-result__item").count() >= 1
    # and the browser fetched nothing but the site's own files
    assert not errors, errors
    elsewhere = [url for url in tried if not url.startswith((site_origin, "data:", "blob:"))]
    assert not elsewhere, elsewhere
