"""The reference pages under docs/reference (and .env.example) are generated from the code:
a change to a setting, a command, a route or an event that is not regenerated fails here."""

from __future__ import annotations

from pathlib import Path

from modelledger.reference import PAGES, stale_pages, write_pages

ROOT = Path(__file__).resolve().parents[2]


def test_every_committed_reference_page_is_what_the_code_generates() -> None:
    # Given the pages committed under docs/reference
    # When they are generated again from the code
    stale = stale_pages(ROOT)
    # Then none differs
    assert not stale, f"stale: {stale}; run `make docs-reference` and commit the pages"


def test_a_page_edited_by_hand_is_found_stale_and_rewritten(tmp_path: Path) -> None:
    # Given freshly generated pages, one of them then edited by hand
    write_pages(tmp_path, report=lambda _: None)
    assert stale_pages(tmp_path) == []
    settings = tmp_path / "docs/reference/settings.md"
    settings.write_text(settings.read_text().replace("MODELLEDGER_PORT", "MODELLEDGER_PROT"))
    # Then it alone is stale, and writing the pages again restores it
    assert stale_pages(tmp_path) == ["docs/reference/settings.md"]
    write_pages(tmp_path, report=lambda _: None)
    assert stale_pages(tmp_path) == []


def test_the_reference_names_every_setting_event_command_and_route() -> None:
    from modelledger.settings import Settings
    from write_model.model import EVENT_TYPES

    pages = {Path(name).name: render() for name, render in PAGES.items()}
    for field in Settings.model_fields.values():
        assert field.description, "every setting says what it means"
    assert "`MODELLEDGER_ANSWER_CACHE_MB`" in pages["settings.md"]
    assert "`OPENAI_API_KEY`" in pages["settings.md"]
    assert "# MODELLEDGER_PORT=8000\n" in pages[".env.example"]
    assert "# OPENAI_API_KEY=\n" in pages[".env.example"]
    for event in EVENT_TYPES:
        assert f"## {event.__name__}\n" in pages["events.md"]
    assert "Version 3, stored as `write_model.model:AIModel.ModelTrained`" in pages["events.md"]
    for command in ("serve", "rebuild", "audit verify", "keys create", "relay", "worker"):
        assert f"`modelledger {command}`" in pages["cli.md"]
    assert "### `POST /api/v1/models/{model_id}/deploy`" in pages["http-api.md"]
    assert "`urn:modelledger:problem:not-yet-up-to-date`" in pages["http-api.md"]
    assert "\ntype Query {\n" in pages["graphql.md"]
    assert "| `modelEvents(after, modelId, types)` | `Event!` |" in pages["graphql.md"]
    assert "## GraphQL\n" in pages["settings.md"]  # its own section, after the main table
