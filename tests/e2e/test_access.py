"""Who may do what over HTTP: keys, roles, projects, revocation, actors, limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.services import Services
from modelledger.web import create_app
from tests.e2e.problems import MODELS, UNKNOWN_MODEL, assert_problem, unique_name
from tests.support.auth import TEST_ADMIN_KEY, bearer
from tests.support.ledgers import make_ledger

KEYS = "/api/v1/admin/keys"


def issue(admin: TestClient, name: str, role: str, projects: list[str] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "role": role}
    if projects is not None:
        body["projects"] = projects
    response = admin.post(KEYS, json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def as_key(client: TestClient, key: str) -> TestClient:
    """The same running app (``client``'s lifespan holds it), acting with another key."""
    return TestClient(client.app, headers=bearer(key))


def trained(client: TestClient, project: str, accuracy: float) -> str:
    body = {"name": unique_name(), "project": project, "task": "classification", "framework": "x"}
    created = client.post(MODELS, json=body)
    assert created.status_code == 201, created.text
    model_id: str = created.json()["id"]
    run = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "s3://d"}).json()["run_id"]
    done = client.post(
        f"{MODELS}/{model_id}/training-runs/{run}/complete",
        json={"metrics": {"accuracy": accuracy}},
    )
    assert done.status_code == 200, done.text
    return model_id


@pytest.fixture
def admin(memory_client: TestClient) -> TestClient:
    return memory_client


def test_without_a_valid_key_only_health_answers(admin: TestClient) -> None:
    anonymous = TestClient(admin.app)
    # Given no key, a malformed key, an unknown key, and a scheme other than Bearer
    for headers in (
        {},
        bearer("not-a-key"),
        bearer("mlk_" + "0" * 32 + "_" + "A" * 43),
        {"Authorization": f"Basic {TEST_ADMIN_KEY}"},
        {"Authorization": "Bearer caf\xe9-\xff".encode("latin-1")},
    ):
        # When they call a query, a command and an admin route
        for method, path in (("GET", MODELS), ("POST", MODELS), ("GET", KEYS)):
            response = anonymous.request(method, path, headers=headers, json={})  # type: ignore[arg-type]  # bytes on purpose
            # Then each is refused with 401 problem+json naming the Authorization header
            assert_problem(response, 401, "Authorization")
            assert response.headers["www-authenticate"].startswith("Bearer")
    # while /health stays open
    assert anonymous.get("/health").status_code == 200


def test_an_issued_key_is_shown_once_listed_without_secrets_and_revoked_at_once(
    admin: TestClient,
) -> None:
    # Given an admin issues a viewer key
    response = admin.post(KEYS, json={"name": "dashboard", "role": "viewer"})
    assert response.status_code == 201, response.text
    issued = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert issued["key"].startswith("mlk_") and issued["role"] == "viewer"
    viewer = as_key(admin, issued["key"])
    # Then the key works at once
    assert viewer.get(MODELS).status_code == 200
    # and the list shows who holds it, never the key or its hash
    listed = admin.get(KEYS, params={"min_position": issued["position"]})
    assert listed.status_code == 200, listed.text
    [entry] = [k for k in listed.json()["items"] if k["id"] == issued["id"]]
    assert (entry["name"], entry["role"], entry["issued_by"], entry["active"]) == (
        "dashboard",
        "viewer",
        "admin",
        True,
    )
    secret = issued["key"][len("mlk_") + 33 :]  # after mlk_<32 hex id>_
    assert secret not in listed.text and "sha256" not in listed.text
    # When the admin revokes it
    revoked = admin.delete(f"{KEYS}/{issued['id']}")
    assert revoked.status_code == 200, revoked.text
    # Then the very next request with it is refused
    assert_problem(viewer.get(MODELS), 401, "Authorization")
    # and a second revocation is a conflict, an unknown key 404
    assert_problem(admin.delete(f"{KEYS}/{issued['id']}"), 409)
    assert_problem(admin.delete(f"{KEYS}/{UNKNOWN_MODEL}"), 404, "key_id")
    # and the list shows it revoked only when asked
    after = admin.get(KEYS, params={"min_position": revoked.json()["position"]}).json()
    assert issued["id"] not in [k["id"] for k in after["items"]]
    everything = admin.get(
        KEYS, params={"include_revoked": True, "min_position": revoked.json()["position"]}
    ).json()
    [gone] = [k for k in everything["items"] if k["id"] == issued["id"]]
    assert (gone["active"], gone["revoked_by"]) == (False, "admin")


def test_roles_viewer_reads_editor_changes_admin_administers(admin: TestClient) -> None:
    model_id = trained(admin, "default", 0.9)
    viewer = as_key(admin, issue(admin, "reader", "viewer"))
    editor = as_key(admin, issue(admin, "writer", "editor"))
    change = {"description": "new"}
    # A viewer reads but may not change or administer
    at = {"min_position": admin.get("/api/v1/events").json()["next_after"]}
    assert viewer.get(f"{MODELS}/{model_id}", params=at).status_code == 200
    assert_problem(viewer.patch(f"{MODELS}/{model_id}", json=change), 403)
    assert_problem(viewer.get(KEYS), 403)
    assert_problem(viewer.get("/metrics"), 403)
    # An editor changes but may not administer
    assert editor.patch(f"{MODELS}/{model_id}", json=change).status_code == 200
    assert_problem(editor.get("/api/v1/admin/projections"), 403)
    assert_problem(editor.post(KEYS, json={"name": "x", "role": "admin"}), 403)
    # An admin may
    assert admin.get("/api/v1/admin/projections").status_code == 200
    assert admin.get("/metrics").status_code == 200


def test_a_key_scoped_to_a_project_sees_and_changes_only_that_project(admin: TestClient) -> None:
    # Given models in two projects
    fraud = trained(admin, "fraud", 0.8)
    vision = trained(admin, "vision", 0.99)
    assert admin.post(f"{MODELS}/{vision}/deploy", json={"environment": "prod"}).is_success
    assert admin.post(f"{MODELS}/{fraud}/deploy", json={"environment": "prod"}).is_success
    # and an editor key for fraud only
    bot = as_key(admin, issue(admin, "ci-bot", "editor", ["fraud"]))
    position = {"min_position": admin.get("/api/v1/events").json()["next_after"]}
    # When it reads a model of the other project, in every form, it is not found
    for path in ("", "/history", "/versions", "/deployments"):
        assert_problem(bot.get(f"{MODELS}/{vision}{path}", params=position), 404)
        assert bot.get(f"{MODELS}/{fraud}{path}", params=position).status_code == 200
    assert_problem(bot.get(f"{MODELS}/{vision}", params={"at_version": 1}), 404)
    # and commands on it are not found either, nor may it create there
    assert_problem(bot.patch(f"{MODELS}/{vision}", json={"description": "x"}), 404)
    body = {"name": "new", "project": "vision", "task": "t", "framework": "f"}
    assert_problem(bot.post(MODELS, json=body), 403, "project")
    # Then lists, statistics, leaderboards, deployments and the feed hold fraud's only
    found = bot.get(MODELS, params=position).json()["items"]
    assert [m["id"] for m in found] == [fraud]
    assert bot.get(MODELS, params={**position, "project": "vision"}).json()["items"] == []
    stats = bot.get(f"{MODELS}/statistics", params=position).json()
    assert stats["total_models"] == 1 and stats["metrics"]["accuracy"]["max"] == 0.8
    top = bot.get(f"{MODELS}/top-performing", params={**position, "metric": "accuracy"}).json()
    assert [m["id"] for m in top["items"]] == [fraud]
    deployed = bot.get("/api/v1/deployments", params=position).json()["items"]
    assert [d["model_id"] for d in deployed] == [fraud]
    feed = bot.get("/api/v1/events", params={"limit": 100}).json()["items"]
    assert {item.get("model_id") for item in feed} == {fraud}
    # while an admin sees both
    assert admin.get(f"{MODELS}/statistics", params=position).json()["total_models"] == 2


def test_the_actor_of_every_event_is_the_key_name_and_the_feed_filters_by_it(
    admin: TestClient,
) -> None:
    bot = as_key(admin, issue(admin, "ci-bot", "editor"))
    # When a key creates and trains a model
    model_id = trained(bot, "default", 0.7)
    # Then its history names the key as the actor of each event
    history = bot.get(f"{MODELS}/{model_id}/history").json()["items"]
    assert {item["actor"] for item in history} == {"ci-bot"}
    # and the feed filtered by that actor holds exactly those events
    mine = admin.get("/api/v1/events", params={"actor": "ci-bot", "limit": 100}).json()
    assert [i["position"] for i in mine["items"]] == [i["position"] for i in history]
    # and key management is in the feed too, for admins, without the key's hash
    keys = admin.get("/api/v1/events", params={"type": "KeyIssued"}).json()["items"]
    assert [(k["data"]["name"], k["actor"]) for k in keys] == [("ci-bot", "admin")]
    assert "secret_sha256" not in keys[0]["data"]
    # but not for anyone else, asked for or not
    assert bot.get("/api/v1/events", params={"type": "KeyIssued"}).json()["items"] == []
    unfiltered = bot.get("/api/v1/events", params={"limit": 100}).json()["items"]
    assert [i["position"] for i in unfiltered] == [i["position"] for i in history]


def test_a_key_id_is_no_model(admin: TestClient) -> None:
    issued = admin.post(KEYS, json={"name": "k", "role": "viewer"}).json()
    for path in ("", "/history", "?at_version=1"):
        assert_problem(admin.get(f"{MODELS}/{issued['id']}{path}"), 404)
    assert_problem(admin.patch(f"{MODELS}/{issued['id']}", json={"description": "x"}), 404)


def test_bad_key_requests_are_problems_naming_the_field(admin: TestClient) -> None:
    assert_problem(admin.post(KEYS, json={"name": "x", "role": "owner"}), 422, "body.role")
    assert_problem(admin.post(KEYS, json={"name": " ", "role": "viewer"}), 422, "body.name")
    bad_project = {"name": "x", "role": "viewer", "projects": ["a/b"]}
    assert_problem(admin.post(KEYS, json=bad_project), 422, "body.projects.0")
    assert_problem(admin.post(KEYS, json={"name": "x", "role": "viewer", "projects": []}), 422)
    assert_problem(admin.delete(f"{KEYS}/not-a-uuid"), 422, "path.key_id")


@pytest.fixture
def limited() -> Iterator[TestClient]:
    ledger = make_ledger("memory://", rate_limit=0.5, rate_limit_burst=3)
    with TestClient(create_app(ledger=ledger), headers=bearer(TEST_ADMIN_KEY)) as client:
        yield client
    ledger.close()


def test_a_key_over_its_rate_is_refused_with_retry_after(limited: TestClient) -> None:
    # Given a limit of 3 requests at once, then one every 2 s
    answers = [limited.get(MODELS) for _ in range(4)]
    # Then the fourth is refused, saying when to retry
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    problem = assert_problem(answers[3], 429)
    assert answers[3].headers["retry-after"] == "2"
    assert "retry" in problem["detail"]
    # while another key has its own allowance
    other = as_key(limited, issue_unlimited(limited))
    assert other.get(MODELS).status_code == 200


def issue_unlimited(client: TestClient) -> str:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    from commands.keys import IssueKey, issue_key
    from commands.registry import CommandContext
    from write_model.access import Role

    command = IssueKey(name="other", role=Role.VIEWER)
    return issue_key(services.registry, command, CommandContext(actor="test")).text


def test_auth_off_is_everyone_an_anonymous_admin_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = make_ledger("memory://", auth=False)
    with caplog.at_level("WARNING"), TestClient(create_app(ledger=ledger)) as client:
        created = client.post(MODELS, json={"name": "m", "task": "t", "framework": "f"})
        assert created.status_code == 201
        history = client.get(f"{MODELS}/{created.json()['id']}/history").json()["items"]
        assert history[0]["actor"] == "anonymous"
    ledger.close()
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)


def test_no_key_reaches_the_logs(admin: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        # Given a key issued, used, refused after revocation, and a wrong key tried
        issued = admin.post(KEYS, json={"name": "logged", "role": "viewer"}).json()
        user = as_key(admin, issued["key"])
        user.get(MODELS)
        admin.delete(f"{KEYS}/{issued['id']}")
        user.get(MODELS)
        wrong = issued["key"][:-4] + "AAAA"
        TestClient(admin.app).get(MODELS, headers=bearer(wrong))
    # Then no log line holds a key, a secret or the admin key
    logged = "\n".join(record.getMessage() for record in caplog.records)
    secret = issued["key"][len("mlk_") + 33 :]  # after mlk_<32 hex id>_
    for text in (issued["key"], secret, wrong, TEST_ADMIN_KEY):
        assert text not in logged


def test_a_retry_is_answered_only_for_the_sender_that_made_it(admin: TestClient) -> None:
    # Given two keys of one name, one for every project and one for fraud only
    everywhere = as_key(admin, issue(admin, "ci-bot", "editor"))
    fraud_only = as_key(admin, issue(admin, "ci-bot", "editor", ["fraud"]))
    body = {"name": "secret-model", "project": "vision", "task": "t", "framework": "f"}
    retry = {"Idempotency-Key": "create-secret-1"}
    created = everywhere.post(MODELS, json=body, headers=retry)
    assert created.status_code == 201
    # When the narrower key sends the same request with the same Idempotency-Key
    replayed = fraud_only.post(MODELS, json=body, headers=retry)
    # Then it is not given the first answer (nor the model's id)
    assert_problem(replayed, 422, "Idempotency-Key")
    assert created.json()["id"] not in replayed.text


def test_what_a_scoped_key_may_not_see_answers_as_if_it_did_not_exist(admin: TestClient) -> None:
    # Given a model in beta, and a viewer of alpha
    hidden = trained(admin, "beta", 0.5)
    assert admin.post(f"{MODELS}/{hidden}/deploy", json={"environment": "prod"}).is_success
    viewer = as_key(admin, issue(admin, "alpha-viewer", "viewer", ["alpha"]))
    head = {"min_position": admin.get("/api/v1/events").json()["next_after"]}
    # When it asks about the hidden model and about one that does not exist
    for asked in (
        {"model_id": hidden},
        {"model_id": UNKNOWN_MODEL},
    ):
        feed = viewer.get("/api/v1/events", params=asked)
        # Then the feed answers both alike, without telling where the model's events stand
        assert (feed.json(), feed.headers["x-position"]) == (
            {"items": [], "next_after": 0, "at_head": True},
            "0",
        )
    for params in ({"at_version": 1}, {"as_of": "2100-01-01T00:00:00Z"}):
        seen = viewer.get(f"{MODELS}/{hidden}", params=params)
        unknown = viewer.get(f"{MODELS}/{UNKNOWN_MODEL}", params=params)
        assert seen.status_code == unknown.status_code == 404
        assert seen.json()["detail"].replace(hidden, "?") == unknown.json()["detail"].replace(
            UNKNOWN_MODEL, "?"
        )
    # and deployments, page after page, never name it, not even in a cursor
    pages = viewer.get("/api/v1/deployments", params={**head, "limit": 1})
    assert pages.json() == {"as_of": None, "items": [], "next_cursor": None}


def test_a_scoped_key_pages_through_only_its_deployments(admin: TestClient) -> None:
    mine = [trained(admin, "alpha", 0.5) for _ in range(3)]
    others = [trained(admin, "beta", 0.5) for _ in range(3)]
    for model_id in mine + others:
        assert admin.post(f"{MODELS}/{model_id}/deploy", json={"environment": "prod"}).is_success
    viewer = as_key(admin, issue(admin, "pager", "viewer", ["alpha"]))
    head = admin.get("/api/v1/events").json()["next_after"]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"min_position": head, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = viewer.get("/api/v1/deployments", params=params).json()
        seen += [item["model_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert not any(hidden in base64_text(cursor) for hidden in others)
    assert sorted(seen) == sorted(mine)


def base64_text(cursor: str) -> str:
    import base64

    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def test_an_admin_key_cannot_be_limited_to_projects(admin: TestClient) -> None:
    body = {"name": "ops", "role": "admin", "projects": ["alpha"]}
    assert_problem(admin.post(KEYS, json=body), 422, "projects")


def test_a_key_may_hold_only_a_few_streams_open(admin: TestClient) -> None:
    admin.app.state.services.open_streams["admin"] = 8  # type: ignore[attr-defined]
    try:
        refused = admin.get("/api/v1/events/stream")
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "5"
    finally:
        admin.app.state.services.open_streams["admin"] = 0  # type: ignore[attr-defined]


def test_guessing_keys_is_counted_before_the_store_is_read(
    limited: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands import keyring

    reads: list[object] = []
    real = keyring.read_key  # type: ignore[attr-defined]

    def counted(*args: Any) -> Any:
        reads.append(args)
        return real(*args)

    monkeypatch.setattr(keyring, "read_key", counted)
    guesser = TestClient(limited.app)
    # When an address tries 6 well-formed keys that do not exist (the burst is 3)
    answers = [
        guesser.get(MODELS, headers=bearer(f"mlk_{i:032x}_" + "A" * 43)).status_code
        for i in range(6)
    ]
    # Then only the first 3 cost a store read; the rest are refused before any
    assert answers == [401, 401, 401, 429, 429, 429]
    assert len(reads) == 3
