"""GraphiQL at GET /graphql works for a user: the page opens without a key, loads its
scripts and styles from the installed package under a policy that allows this origin
only, and in a real browser that can reach nothing but the server, a user who puts their
key in the Headers tab runs a query, reads the schema's docs and follows a subscription,
with nothing blocked, nothing on the console and nothing fetched from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from tests.e2e.test_api_docs import Visit, assets
from tests.support.auth import TEST_ADMIN_KEY
from tests.support.browser import chromium
from tests.support.processes import ApiProcess

HEADERS_EDITOR = "section[aria-label=Headers] .graphiql-editor:not(.hidden) .CodeMirror"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESULT = ".result-window"


def test_the_page_opens_without_a_key_and_loads_only_from_this_origin(
    memory_client: TestClient,
) -> None:
    # When a browser opens /graphql, with no key
    anonymous = TestClient(memory_client.app)
    response = anonymous.get("/graphql", headers={"Accept": "text/html"})
    # Then it gets the page, under a policy that allows this origin only
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'self';"), policy
    assert not re.search(r"https?:|\*|unsafe-", policy), policy
    assert "frame-ancestors 'none'" in policy
    # with a style nonce of its own, never another page's
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and f'data-style-nonce="{nonce[1]}"' in response.text
    assert anonymous.get("/graphql").headers["content-security-policy"] != policy
    # and every script and style it names is served by the app itself, with no inline script
    named = assets(response.text)
    assert len([url for url in named if url.endswith(".js")]) == response.text.count("<script")
    for url in named:
        assert "//" not in url, url
        assert anonymous.get(urljoin("/graphql", url)).status_code == 200, url


def test_a_query_posted_is_still_answered_under_the_api_policy(memory_client: TestClient) -> None:
    response = memory_client.post("/graphql", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


# -- in a real browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def set_editor(page: Any, selector: str, text: str) -> None:
    """What a user pastes into one of GraphiQL's editors (CodeMirror)."""
    page.locator(selector).evaluate("(editor, text) => editor.CodeMirror.setValue(text)", text)


@pytest.mark.slow
def test_a_user_gives_the_key_then_queries_reads_the_docs_and_subscribes(
    browser: object, served: ApiProcess
) -> None:
    # Given a model in the registry
    with served.client() as api:
        body = {"name": "graphiql-story", "project": "gql", "task": "t", "framework": "f"}
        model_id = api.post("/api/v1/models", json=body).json()["id"]
    # and a browser that can reach nothing but the server
    visit = Visit(browser, served)
    page = visit.page
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    # When a user opens /graphql
    page.goto(f"{served.base_url}/graphql")
    # Then GraphiQL renders, its Headers tab open, saying where the key goes
    headers = page.locator(HEADERS_EDITOR)
    headers.wait_for(timeout=10_000)
    assert headers.evaluate("editor => editor.CodeMirror.getValue()") == (
        '{"Authorization": "Bearer <your key>"}'
    )
    # and running a query before giving one says so, without asking the server
    page.click(".graphiql-execute-button")
    page.locator(RESULT).filter(has_text="Put your API key in the Headers tab").wait_for()
    # When they type their key in the Headers tab and run the query the page offers
    headers.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(f'{{"Authorization": "Bearer {TEST_ADMIN_KEY}"}}')
    page.click(".graphiql-execute-button")
    # Then the answer is the data
    answer = page.locator(RESULT).filter(has_text='"data"')
    answer.wait_for(timeout=10_000)
    assert '"metricDefinitions"' in answer.inner_text()
    # and with the schema fetched again, the docs show its root types
    page.click("button[aria-label='Re-fetch GraphQL schema']")
    page.click("button[aria-label='Show Documentation Explorer']")
    page.locator(".graphiql-doc-explorer").get_by_role("link", name="Subscription").wait_for()
    # and the settings dialog opens (its scroll lock's style is allowed by the page's nonce)
    page.click("button[aria-label='Open settings dialog']")
    page.get_by_role("dialog").wait_for()
    page.keyboard.press("Escape")
    # When they follow the model's events
    subscription = f'subscription {{ modelEvents(modelId: "{model_id}") {{ type }} }}'
    set_editor(page, QUERY_EDITOR, subscription)
    page.wait_for_timeout(300)  # GraphiQL parses the operation 100 ms after an edit
    with page.expect_websocket() as opened:
        page.click(".graphiql-execute-button")
    # Then the events arrive over this origin's WebSocket, which the key opened
    assert opened.value.url == served.base_url.replace("http", "ws", 1) + "/graphql"
    page.locator(RESULT).filter(has_text='"ModelCreated"').wait_for(timeout=10_000)
    # with nothing blocked, nothing on the console and nothing fetched from anywhere else
    assert visit.blocked() == [] and errors == [] and visit.outside() == []
    visit.context.close()
