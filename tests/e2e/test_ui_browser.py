"""The web UI in a real browser (Debian's chromium): a user signs in with a key, lands on
the link they were sent, searches the catalogue and opens a model, with nothing fetched
from elsewhere, nothing blocked by the page's policy and nothing on the console."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.test_api_docs import Visit
from tests.support.browser import chromium
from tests.support.processes import ApiProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def sign_in_to(page: Any, served: ApiProcess, path: str, key: str | None = None) -> None:
    """Open ``path`` through the sign-in form, as a shared link is opened."""
    page.goto(f"{served.base_url}/ui/login?next={quote(path, safe='')}")
    page.get_by_label("API key").fill(key or served.key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{served.base_url}{path}")


def trained_model(served: ApiProcess, name: str) -> dict[str, Any]:
    """A model trained once, through the API."""
    with served.client() as api:
        body = {"name": name, "project": "ui", "task": "t", "framework": "f"}
        model: dict[str, Any] = api.post("/api/v1/models", json=body).json()
        url = f"/api/v1/models/{model['id']}"
        run = api.post(f"{url}/train", json={"dataset": "d"}).json()["run_id"]
        api.post(f"{url}/training-runs/{run}/complete", json={"metrics": {"f1": 0.5}})
    return model


def test_sign_in_land_on_the_shared_link_search_and_open_a_model(
    browser: object, served: ApiProcess
) -> None:
    # Given a trained model in the registry
    with served.client() as api:
        body = {"name": "ui-fraud-scorer", "project": "ui", "task": "t", "framework": "f"}
        model = api.post("/api/v1/models", json=body).json()
        run = api.post(f"/api/v1/models/{model['id']}/train", json={"dataset": "d"}).json()
        done = api.post(
            f"/api/v1/models/{model['id']}/training-runs/{run['run_id']}/complete",
            json={"metrics": {"accuracy": 0.93}},
        ).json()
        api.get("/api/v1/models", params={"min_position": done["position"]})
    visit = Visit(browser, served)
    page = visit.page
    # When a user opens a link to a search they were sent, and signs in
    shared = "/ui/models?q=ui-fraud&project=ui"
    page.goto(f"{served.base_url}{shared}")
    assert page.url == f"{served.base_url}/ui/login?next={quote(shared, safe='')}"
    page.get_by_label("API key").fill(served.key)
    page.get_by_role("button", name="Sign in").click()
    # Then they land on that search, which finds the model with its best accuracy
    page.wait_for_url(f"{served.base_url}{shared}")
    row = page.get_by_role("row").filter(has_text="ui-fraud-scorer")
    assert "accuracy 0.93 (v1)" in row.inner_text()
    # and the model's page tells its story
    page.get_by_role("link", name="ui-fraud-scorer").click()
    page.wait_for_url(f"{served.base_url}/ui/models/{model['id']}")
    assert page.get_by_role("heading", name="ui-fraud-scorer").is_visible()
    assert page.get_by_text("ModelTrained").count() == 1
    # with a chart of its metric across its versions, drawn by the vendored Chart.js
    drawn = "() => Chart.getChart('metric-chart').data.datasets[0].data"
    assert page.evaluate(drawn) == [0.93]
    assert page.get_by_role("img", name="accuracy across 1 versions").is_visible()
    # and every page of the header opens, by keyboard too
    for name in ("Leaderboard", "Statistics", "Activity"):
        page.get_by_role("link", name=name).focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{served.base_url}/ui/{name.lower()}")
        assert page.get_by_role("heading", name=name).is_visible()
        if name == "Statistics":  # its counts drawn as charts too
            drawn = "() => Chart.getChart(document.querySelector('canvas')).data.labels.length"
            assert page.evaluate(drawn) >= 1
    # When they sign out, the catalogue asks them to sign in again
    copied = visit.context.cookies()  # (as someone who took the cookie would hold it)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{served.base_url}/ui/login")
    page.goto(f"{served.base_url}/ui/models")
    assert page.url.startswith(f"{served.base_url}/ui/login")
    # and so does a copy of the cookie the session had, in another browser
    other = browser.new_context()  # type: ignore[attr-defined]
    other.add_cookies(copied)
    elsewhere = other.new_page()
    elsewhere.goto(f"{served.base_url}/ui/models")
    assert elsewhere.url.startswith(f"{served.base_url}/ui/login")
    other.close()
    # And nothing came from elsewhere, was blocked, or was logged
    assert visit.outside() == [] and visit.stopped == []
    assert visit.console == [], visit.console
    visit.context.close()


def test_a_scoped_viewer_sees_its_project_as_it_was_and_changes_nothing(
    browser: object, served: ApiProcess
) -> None:
    # Given a model in each of two projects, the second registered after a moment T
    with served.client() as api:
        first = {"name": "ui-scope-early", "project": "ui-a", "task": "t", "framework": "f"}
        api.post("/api/v1/models", json=first)
        other = {"name": "ui-scope-other", "project": "ui-b", "task": "t", "framework": "f"}
        api.post("/api/v1/models", json=other)
        time.sleep(0.05)
        moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        time.sleep(0.05)
        later = {"name": "ui-scope-later", "project": "ui-a", "task": "t", "framework": "f"}
        made = api.post("/api/v1/models", json=later).json()
        api.get("/api/v1/models", params={"min_position": made["position"]})
        asked = {"name": "ui-scoped", "role": "viewer", "projects": ["ui-a"]}
        issued = api.post("/api/v1/admin/keys", json=asked).json()
    visit = Visit(browser, served)
    page = visit.page
    # When a viewer whose key sees project ui-a alone opens the catalogue
    sign_in_to(page, served, "/ui/models?q=ui-scope", key=issued["key"])
    rows = page.locator("tbody").first.inner_text()
    # Then it lists that project's models only, and offers no form to change anything
    assert "ui-scope-early" in rows and "ui-scope-later" in rows and "ui-scope-other" not in rows
    assert page.get_by_role("heading", name="Register a model").count() == 0
    # When the header's "As of" is set to T
    page.get_by_role("textbox", name="As of").fill(moment)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{served.base_url}/ui/models?q=ui-scope&as_of=*")
    # Then the catalogue is as it was then, and says so, with a way back to now
    assert "The registry as it was at" in page.get_by_role("status").first.inner_text()
    rows = page.locator("tbody").first.inner_text()
    assert "ui-scope-early" in rows and "ui-scope-later" not in rows
    page.get_by_role("link", name="Back to now").click()
    assert "ui-scope-later" in page.locator("tbody").first.inner_text()
    # and a form posted by hand, with the session's cookie, is refused
    token = page.locator('input[name="form_token"]').first.get_attribute("value")
    forged = page.request.post(
        f"{served.base_url}/ui/models",
        form={"form_token": token or "", "name": "x", "project": "ui-a", "task": "t",
              "framework": "f"},
        headers={"origin": served.base_url},
    )  # fmt: skip
    assert forged.status == 403 and "may not change" in forged.text()
    fields = {"name": "x", "project": "ui-a", "task": "t", "framework": "f"}
    no_token = page.request.post(
        f"{served.base_url}/ui/models", form=fields, headers={"origin": served.base_url}
    )
    assert no_token.status == 403 and "token" in no_token.text()
    # When an admin revokes the key, the next page asks to sign in again
    with served.client() as api:
        assert api.delete(f"/api/v1/admin/keys/{issued['id']}").status_code == 200
    time.sleep(1.2)  # (another process sees a revocation within the key cache's second)
    page.reload()
    assert page.url.startswith(f"{served.base_url}/ui/login")
    visit.context.close()


def test_the_activity_page_shows_a_new_event_within_two_seconds(
    browser: object, served: ApiProcess
) -> None:
    visit = Visit(browser, served)
    page = visit.page
    sign_in_to(page, served, "/ui/activity")
    assert page.get_by_role("status").filter(has_text="as they happen").is_visible()
    # When a model is registered through the API while the page is open
    with served.client() as api:
        body = {"name": "ui-live-model", "project": "ui", "task": "t", "framework": "f"}
        created = api.post("/api/v1/models", json=body).json()
    # Then its event is on the page within 2 s, without a reload
    row = page.locator(f'tr[data-position="{created["position"]}"]')
    row.wait_for(timeout=2_000)
    assert "ModelCreated" in row.inner_text()
    assert visit.console == [], visit.console
    visit.context.close()


def test_a_deployment_shows_on_the_open_models_timeline_without_reloading(
    browser: object, served: ApiProcess
) -> None:
    model = trained_model(served, "ui-live-deploy")
    url = f"/api/v1/models/{model['id']}"
    visit = Visit(browser, served)
    page = visit.page
    sign_in_to(page, served, f"/ui/models/{model['id']}")
    with served.client() as api:
        timeline = page.locator("#timeline")
        assert "Never deployed" in timeline.inner_text()
        page.evaluate("() => { window.stillHere = true; }")  # (a reload would forget it)
        # When it is deployed (here through the API, as another user would)
        api.post(f"{url}/deploy", json={"environment": "canary"})
        # Then the open page's timeline shows it within 2 s, with no new page load
        timeline.filter(has_text="canary").wait_for(timeout=2_000)
        assert page.evaluate("() => window.stillHere === true")
    assert visit.console == [], visit.console
    visit.context.close()


def test_a_deploy_from_the_page_shows_on_its_timeline_without_reloading(
    browser: object, served: ApiProcess
) -> None:
    model = trained_model(served, "ui-deploy-here")
    visit = Visit(browser, served)
    page = visit.page
    sign_in_to(page, served, f"/ui/models/{model['id']}")
    page.evaluate("() => { window.stillHere = true; }")  # (a reload would forget it)
    # When the editor deploys from the page's form
    page.get_by_label("Environment").fill("staging")
    page.get_by_role("button", name="Deploy", exact=True).click()
    # Then the timeline shows it, the status line says so, and the page was not reloaded
    page.locator("#timeline").filter(has_text="staging").wait_for(timeout=2_000)
    page.locator("#action-status").filter(has_text="Done").wait_for(timeout=2_000)
    assert page.evaluate("() => window.stillHere === true")
    # and a refused one says why, in the API's words
    page.get_by_label("Environment").fill("prod")
    page.get_by_label("Version (empty: the latest)").fill("7")
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.locator("#action-status").filter(has_text="Refused").wait_for(timeout=2_000)
    # (the browser logs the refused post itself: nothing else)
    assert all("status of 422" in line for line in visit.console), visit.console
    visit.context.close()


def test_no_page_has_a_serious_accessibility_violation_at_either_width(
    browser: object, served: ApiProcess
) -> None:
    """axe-core (bundled by axe-playwright-python) on each page, at 1280 and 390 px wide."""
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    with served.client() as api:
        body = {"name": "ui-axe", "project": "ui", "task": "t", "framework": "f"}
        model = api.post("/api/v1/models", json=body).json()
        api.get("/api/v1/models", params={"min_position": model["position"]})
    pages = (
        "/ui/models",
        f"/ui/models/{model['id']}",
        "/ui/leaderboard?metric=accuracy",
        "/ui/statistics",
        "/ui/activity",
    )
    axe, found = Axe(), []
    for width, height in ((1280, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
        page = context.new_page()
        page.goto(f"{served.base_url}/ui/login")
        assert not _serious(axe.run(page)), "the sign-in page"
        page.get_by_label("API key").fill(served.key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{served.base_url}/ui/models")
        for path in pages:
            page.goto(f"{served.base_url}{path}")
            found += [(width, path, rule) for rule in _serious(axe.run(page))]
        context.close()
    assert not found, found


def _serious(results: object) -> list[str]:
    answer = results.response  # type: ignore[attr-defined]
    assert answer["passes"], "axe checked nothing: was it kept out of the page?"
    violations = answer["violations"]
    return [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
