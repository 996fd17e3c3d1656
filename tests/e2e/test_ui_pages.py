"""The web UI's reading pages: the leaderboard in a metric's direction, statistics, and
the catalogue as it was at a time."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tests.e2e.test_access import issue
from tests.e2e.test_registry_basics import registered
from tests.e2e.test_ui_sessions import browser, signed_in
from tests.support.auth import TEST_ADMIN_KEY, api_client
from tests.support.ledgers import make_ledger


def names_in_order(page: str, *names: str) -> list[str]:
    return sorted(names, key=page.index)


def test_the_leaderboard_ranks_in_the_metrics_direction_and_says_which(
    admin: TestClient,
) -> None:
    registered(admin, "quick", "p", latency_ms=5.0)
    last = registered(admin, "slow", "p", latency_ms=50.0)
    admin.get("/api/v1/models", params={"min_position": last["position"]})
    user = signed_in(admin, TEST_ADMIN_KEY)
    page = user.get("/ui/leaderboard", params={"metric": "latency_ms"})
    assert page.status_code == 200
    assert "lower is better" in page.text
    assert names_in_order(page.text, "quick", "slow") == ["quick", "slow"]
    # a question the API refuses is said on the page, naming what was wrong
    refused = user.get("/ui/leaderboard", params={"metric": "x", "limit": "0"})
    assert refused.status_code == 422 and "limit" in refused.text


def test_statistics_count_models_and_show_each_metrics_best(admin: TestClient) -> None:
    registered(admin, "a", "p", loss=0.5)
    last = registered(admin, "b", "p", loss=0.2)
    admin.get("/api/v1/models", params={"min_position": last["position"]})
    page = signed_in(admin, TEST_ADMIN_KEY).get("/ui/statistics").text
    assert "2 models" in page
    assert "0.2 (lowest)" in page


def test_the_catalogue_as_of_a_time_shows_the_registry_then(admin: TestClient) -> None:
    registered(admin, "early", "p")
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    last = registered(admin, "late", "p")
    admin.get("/api/v1/models", params={"min_position": last["position"]})
    user = signed_in(admin, TEST_ADMIN_KEY)
    now = user.get("/ui/models").text
    assert "early" in now and "late" in now
    then = user.get("/ui/models", params={"as_of": moment})
    assert then.status_code == 200
    assert "early" in then.text and ">late<" not in then.text
    assert "The registry as it was at" in then.text and "Back to now" in then.text


def test_a_page_is_not_served_before_signing_in() -> None:
    ledger = make_ledger("memory://")
    try:
        with api_client(ledger) as client:
            for path in ("/ui/leaderboard", "/ui/statistics", "/ui/models"):
                answer = browser(client).get(path, follow_redirects=False)
                assert answer.status_code == 303, path
    finally:
        ledger.close()


def test_a_models_page_shows_its_deployments_over_time(admin: TestClient) -> None:
    trained = registered(admin, "served", "p", accuracy=0.9)
    url = f"/api/v1/models/{trained['id']}"
    admin.post(f"{url}/deploy", json={"environment": "staging"})
    user = signed_in(admin, TEST_ADMIN_KEY)
    page = user.get(f"/ui/models/{trained['id']}").text
    timeline = page[
        page.index("<h2>Deployments</h2>") : page.index('<h2 id="versions">Versions</h2>')
    ]
    assert "staging" in timeline and "now" in timeline and "admin" in timeline


def test_activity_lists_the_feed_filtered_and_hides_key_events_from_a_viewer(
    admin: TestClient,
) -> None:
    trained = registered(admin, "busy", "p", accuracy=0.9)
    viewer_key = issue(admin, "watcher", "viewer")
    as_admin = signed_in(admin, TEST_ADMIN_KEY).get("/ui/activity").text
    assert "ModelTrained" in as_admin and "KeyIssued" in as_admin
    as_viewer = signed_in(admin, viewer_key)
    page = as_viewer.get("/ui/activity").text
    assert "ModelTrained" in page and "KeyIssued" not in page
    only = as_viewer.get("/ui/activity", params={"type": "ModelCreated"}).text
    assert "ModelCreated" in only and "ModelTrained" not in only
    assert f"/ui/models/{trained['id']}" in only
    assert as_viewer.get("/ui/activity", params={"type": "Nope"}).status_code == 422


def test_a_models_page_as_of_a_time_shows_it_then_and_offers_no_change(
    admin: TestClient,
) -> None:
    model = registered(admin, "m", "p")
    admin.patch(f"/api/v1/models/{model['id']}", json={"description": "first words"})
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    admin.patch(f"/api/v1/models/{model['id']}", json={"description": "second words"})
    user = signed_in(admin, TEST_ADMIN_KEY)
    now = user.get(f"/ui/models/{model['id']}").text
    assert "second words" in now and "Change it" in now
    then = user.get(f"/ui/models/{model['id']}", params={"as_of": moment})
    assert then.status_code == 200
    assert "first words" in then.text and "second words" not in then.text
    assert "Change it" not in then.text and "The registry as it was at" in then.text
    assert then.text.count("ModelUpdated") == 1  # the history up to then
    bad = user.get(f"/ui/models/{model['id']}", params={"as_of": "yesterday"})
    assert bad.status_code == 422


def test_two_versions_side_by_side_and_each_update_as_before_and_after(
    admin: TestClient,
) -> None:
    model = registered(admin, "cmp", "p", accuracy=0.8, loss=0.4)
    url = f"/api/v1/models/{model['id']}"
    run = admin.post(f"{url}/train", json={"dataset": "s3://v2", "hyperparameters": {"lr": 0.1}})
    run_id = run.json()["run_id"]
    admin.post(f"{url}/training-runs/{run_id}/complete", json={"metrics": {"accuracy": 0.9}})
    admin.patch(url, json={"description": "better", "tags": ["eu"]})
    user = signed_in(admin, TEST_ADMIN_KEY)
    side = user.get(f"/ui/models/{model['id']}/compare", params={"a": 1, "b": 2}).text
    assert re.search(r"<th scope=\"row\">accuracy</th><td>0.8</td><td>0.9</td>", side)
    assert re.search(r"<th scope=\"row\">loss</th><td>0.4</td><td></td>", side)
    assert re.search(r"<th scope=\"row\">dataset</th><td>d</td><td>s3://v2</td>", side)
    assert re.search(r"<th scope=\"row\">hyperparameters.lr</th><td></td><td>0.1</td>", side)
    assert user.get(f"/ui/models/{model['id']}/compare", params={"a": 1, "b": 9}).status_code == 404
    story = user.get(f"/ui/models/{model['id']}").text
    assert "description: <del></del> &rarr; <ins>better</ins>" in story
    assert "tags: <del>[]</del> &rarr; <ins>[&#39;eu&#39;]</ins>" in story


def test_the_live_stream_is_refused_past_the_keys_streams_before_it_begins(
    admin: TestClient,
) -> None:
    user = signed_in(admin, TEST_ADMIN_KEY)
    services = admin.app.state.services  # type: ignore[attr-defined]
    services.open_streams["admin"] = 8  # (as if eight were open)
    try:
        refused = user.get("/ui/activity/stream")
        assert refused.status_code == 429 and "streams open already" in refused.text
    finally:
        services.open_streams["admin"] = 0
    assert user.get("/ui/activity/stream", params={"after": -1}).status_code == 422


def test_a_models_versions_and_history_are_paged_newest_first(admin: TestClient) -> None:
    # Given a model trained 25 times (51 events: registered, then started and completed)
    model_id = registered(admin, "busy", "p")["id"]
    for n in range(25):
        run = admin.post(f"/api/v1/models/{model_id}/train", json={"dataset": "d"}).json()
        admin.post(
            f"/api/v1/models/{model_id}/training-runs/{run['run_id']}/complete",
            json={"metrics": {"accuracy": n / 100}},
        )
    user = signed_in(admin, TEST_ADMIN_KEY)
    first = user.get(f"/ui/models/{model_id}").text
    versions = re.findall(r"<tr><td>(\d+)</td>", first.split('id="versions"')[1])
    # Then the page shows the newest 20 versions and leads to the older ones
    assert versions[:20] == [str(n) for n in range(25, 5, -1)]
    older = re.search(r'href="([^"]+)#versions">Older versions', first)
    assert older is not None and "Newer versions" not in first
    second = user.get(older.group(1).replace("&amp;", "&")).text
    assert re.findall(r"<tr><td>(\d+)</td>", second.split('id="versions"')[1])[:5] == [
        "5", "4", "3", "2", "1"
    ]  # fmt: skip
    assert "Older versions" not in second and "Newer versions" in second
    # and the newest 50 events of its history, then the one before them
    positions = [int(p) for p in re.findall(r"\(position (\d+),", first)]
    assert len(positions) == 50 and positions == sorted(positions, reverse=True)
    earlier = re.search(r'href="([^"]+)#history">Older events', first)
    assert earlier is not None
    rest = user.get(earlier.group(1).replace("&amp;", "&")).text
    assert [int(p) for p in re.findall(r"\(position (\d+),", rest)] == [min(positions) - 1]
    assert "ModelCreated" in rest and "Newest events" in rest
