"""The reference pages of the documentation site, generated from the code: the settings
(from the settings model's field descriptions), the command line (from typer), the HTTP
API (from the OpenAPI document), GraphQL (from its schema) and the events (from the event
classes); and
`.env.example`, from the settings too.

`make docs-reference` writes them; a test fails when a committed file differs from what
the code generates, so the reference never drifts from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelledger.reference import (
    cli_page,
    events_page,
    graphql_page,
    http_api_page,
    settings_page,
)

# Each generated file by its path from the repository's root.
PAGES: dict[str, Callable[[], str]] = {
    "docs/reference/settings.md": settings_page.render,
    "docs/reference/cli.md": cli_page.render,
    "docs/reference/http-api.md": http_api_page.render,
    "docs/reference/graphql.md": graphql_page.render,
    "docs/reference/events.md": events_page.render,
    ".env.example": settings_page.render_env_example,
}


def stale_pages(root: Path) -> list[str]:
    """The files under ``root`` that differ from what the code generates now."""
    return [
        name
        for name, render in PAGES.items()
        if not (root / name).is_file() or (root / name).read_text() != render()
    ]


def write_pages(root: Path, report: Callable[[str], None] = print) -> None:
    """(Re)write every file under ``root``, saying which changed."""
    for name, render in PAGES.items():
        path = root / name
        text = render()
        if path.is_file() and path.read_text() == text:
            report(f"{name}: up to date")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        report(f"{name}: written")
