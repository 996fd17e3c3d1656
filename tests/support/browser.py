"""Debian's chromium driven by playwright, as the browser tests use it: never a downloaded
browser, and able to reach nothing but 127.0.0.1 (the resolver rule)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# As the machine's own probe starts it; the resolver rule leaves the browser no way out
# but to a server on 127.0.0.1.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@contextmanager
def chromium() -> Iterator[object]:
    """The launched browser; the test skips, saying why, when it cannot start here."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        missing = f"no {CHROMIUM}: `make test` installs Debian's chromium package"
        if os.environ.get("CI") == "true":  # CI must run the browser stories, not skip them
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except playwright_api.Error as error:
            pytest.skip(f"chromium cannot start here: {error}")
        yield launched
        launched.close()
