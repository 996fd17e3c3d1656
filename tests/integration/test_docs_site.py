"""The documentation site builds without a warning, loads nothing from another origin,
and the README stays a short door into it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.docs_site import ROOT, build_site

LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}
ELSEWHERE = re.compile(r"^(https?:)?//")


class Loads(HTMLParser):
    """Every address a page makes the browser fetch (links to follow are not fetched)."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = LOADING.get(tag)
        for name, value in attrs:
            if name == wanted and value and not (tag == "link" and _followed(attrs)):
                self.addresses.append(value)


def _followed(attrs: list[tuple[str, str | None]]) -> bool:
    rel = dict(attrs).get("rel") or ""
    return rel in {"canonical", "alternate", "next", "prev", "license"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    build_site(built)
    return built


def test_every_page_loads_only_from_its_own_origin(site: Path) -> None:
    # Given the built site
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    # Then no page, and no style sheet, fetches anything from another origin
    for page in pages:
        parser = Loads()
        parser.feed(page.read_text())
        assert parser.addresses, page  # (the parser does see what pages load)
        elsewhere = [a for a in parser.addresses if ELSEWHERE.match(a)]
        assert not elsewhere, f"{page}: {elsewhere}"
    for sheet in site.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", sheet.read_text()), sheet
        assert "@import" not in sheet.read_text(), sheet


def test_the_security_policy_is_on_the_site_as_it_is_at_the_root(site: Path) -> None:
    page = (site / "security.html").read_text()
    first_heading = next(
        line for line in (ROOT / "SECURITY.md").read_text().splitlines() if line.startswith("## ")
    )
    assert first_heading[3:].strip() in page


def test_the_readme_is_short_and_its_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    # Given the README: at most 250 lines
    assert len(readme.splitlines()) <= 250
    # Then every relative link names a file of the clone
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not ELSEWHERE.match(t) and not t.startswith("mailto:")]
    assert local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing
    # and it opens the door to each part of the site
    for part in ("docs/tutorial.md", "docs/how-to/", "docs/explanation/", "docs/reference/"):
        assert any(t.startswith(part) for t in local), part
