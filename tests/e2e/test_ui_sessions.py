"""The web UI's sessions and forms (issue 21, the first pages): signing in with an API key,
returning to the page asked for, a cookie that holds no secret, forms that another page
cannot post, and keys whose role and projects apply as on the API."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.feed_schemas import EventPage
from tests.e2e.test_access import issue
from tests.support.auth import TEST_ADMIN_KEY, api_client
from tests.support.ledgers import make_ledger
from ui.access import BACKGROUND
from ui.sessions import IDLE, LONGEST, Session, opened, sealed

ORIGIN = "http://testserver"
MODELS = "/api/v1/models"


def browser(client: TestClient) -> TestClient:
    """The same running app, as a browser sees it: no Authorization header, cookies kept,
    and its forms sent from the app's own pages (their Origin)."""
    return TestClient(client.app, base_url=ORIGIN, headers={"origin": ORIGIN})


def signed_in(client: TestClient, key: str, back_to: str = "/ui/models") -> TestClient:
    user = browser(client)
    answer = user.post("/ui/login", data={"key": key, "next": back_to}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return user


def register(client: TestClient, name: str, project: str = "p") -> str:
    body = {"name": name, "project": project, "task": "t", "framework": "f"}
    answer = client.post(MODELS, json=body)
    assert answer.status_code == 201, answer.text
    # (the catalogue has it once it reaches the command's position)
    client.get(MODELS, params={"min_position": answer.json()["position"]})
    model_id: str = answer.json()["id"]
    return model_id


def form_token_of(page: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


def test_a_shared_link_opens_after_signing_in(admin: TestClient) -> None:
    register(admin, "fraud-detector")
    user = browser(admin)
    # Given a link someone shared, opened without a session
    shared = "/ui/models?q=fraud&sort=name"
    asked = user.get(shared, follow_redirects=False)
    # Then it leads to the sign-in form, which leads back to it
    assert asked.status_code == 303
    assert asked.headers["location"] == "/ui/login?next=%2Fui%2Fmodels%3Fq%3Dfraud%26sort%3Dname"
    signed = user.post("/ui/login", data={"key": TEST_ADMIN_KEY, "next": shared})
    assert signed.status_code == 200 and signed.url.path == "/ui/models"
    assert "fraud-detector" in signed.text and 'value="fraud"' in signed.text


def test_the_cookie_names_the_key_and_holds_no_secret(admin: TestClient) -> None:
    key = issue(admin, "alice", "viewer")
    user = browser(admin)
    answer = user.post("/ui/login", data={"key": key, "next": "/ui/models"}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    secret = key.rsplit("_", 1)[1]
    assert secret not in cookie and key not in cookie
    assert key.split("_")[1] in cookie  # the key's id
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui", "Max-Age=43200"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # (plain http here; Secure when served over https)


def test_a_wrong_key_is_refused_on_the_form_and_nothing_is_set(admin: TestClient) -> None:
    user = browser(admin)
    for key in ("not-a-key", "mlk_" + "0" * 32 + "_" + "a" * 43):
        answer = user.post("/ui/login", data={"key": key}, follow_redirects=False)
        assert answer.status_code == 401
        assert "set-cookie" not in answer.headers
        assert 'role="alert"' in answer.text


@pytest.mark.parametrize(
    "elsewhere", ["https://evil.example/", "//evil.example/ui", "/api/v1/models", "/ui\\@evil"]
)
def test_signing_in_never_leads_off_the_ui(admin: TestClient, elsewhere: str) -> None:
    user = browser(admin)
    answer = user.post(
        "/ui/login", data={"key": TEST_ADMIN_KEY, "next": elsewhere}, follow_redirects=False
    )
    assert answer.headers["location"] == "/ui/models"


def test_a_revoked_keys_session_ends_at_once(admin: TestClient) -> None:
    key = issue(admin, "bob", "viewer")
    user = signed_in(admin, key)
    assert user.get("/ui/models").url.path == "/ui/models"
    # When the key is revoked
    key_id = key.split("_")[1]
    revoked = admin.delete(f"/api/v1/admin/keys/{key_id[:8]}-{key_id[8:12]}-{key_id[12:16]}-"
                           f"{key_id[16:20]}-{key_id[20:]}")  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    # Then its session opens nothing: the next page asks to sign in
    after = user.get("/ui/models", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/ui/login")


def copy_of(user: TestClient, client: TestClient) -> TestClient:
    """Another browser holding a copy of ``user``'s session cookie."""
    thief = browser(client)
    thief.cookies.set("modelledger_session", user.cookies["modelledger_session"], path="/ui")
    return thief


def sign_out(user: TestClient) -> None:
    token = form_token_of(user.get("/ui/models").text)
    answer = user.post("/ui/logout", data={"form_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"


@pytest.mark.parametrize("key_of", ["a key in the log", "the environment's admin key"])
def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(
    admin: TestClient, key_of: str
) -> None:
    key = issue(admin, "carol", "editor") if key_of == "a key in the log" else TEST_ADMIN_KEY
    # Given a session, and a copy of its cookie in another browser
    user = signed_in(admin, key)
    copy = copy_of(user, admin)
    assert copy.get("/ui/models", follow_redirects=False).status_code == 200
    # and another session of the same key
    other = signed_in(admin, key)
    # When the user signs out
    sign_out(user)
    # Then the copy opens nothing, and the same key's other session is untouched
    assert copy.get("/ui/models", follow_redirects=False).status_code == 303
    assert other.get("/ui/models", follow_redirects=False).status_code == 200
    # and the feed tells admins (only them) who signed out
    feed = admin.get("/api/v1/events", params={"type": "SessionEnded"}).json()["items"]
    assert [e["actor"] for e in feed] == ["carol" if key_of == "a key in the log" else "admin"]
    viewer = api_client_for(admin, issue(admin, "dave", "viewer"))
    assert viewer.get("/api/v1/events", params={"type": "SessionEnded"}).json()["items"] == []
    # in the feed's documented shape
    page = EventPage.model_validate(admin.get("/api/v1/events").json())
    assert [type(e).__name__ for e in page.items if e.type == "SessionEnded"] == ["SessionEvent"]
    # and what the copy's page had open is told it ended: its stream, its forms, its rows
    stream = copy.get("/ui/activity/stream")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.startswith("event: end")
    htmx = {"HX-Request": "true"}
    said = copy.post("/ui/models", data={"name": "x"}, headers=htmx)
    assert said.status_code == 200 and said.text == "Refused: the session has ended; sign in again."
    rows = copy.get("/ui/models/" + "0" * 32 + "/timeline", headers={**htmx, BACKGROUND: "1"})
    assert rows.status_code == 204 and rows.text == ""


def api_client_for(client: TestClient, key: str) -> TestClient:
    return TestClient(client.app, headers={"Authorization": f"Bearer {key}"})


def test_a_sign_out_in_one_process_ends_the_session_in_another(tmp_path: Path) -> None:
    # Given two processes serving one store (two replicas)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first, second = make_ledger(url, rate_limit=0), make_ledger(url, rate_limit=0)
    try:
        with api_client(first) as one, api_client(second) as two:
            key = issue(one, "erin", "viewer")
            user = signed_in(one, key)
            two.app.state.session_secret = one.app.state.session_secret  # type: ignore[attr-defined]
            copy = copy_of(user, two)
            assert copy.get("/ui/models", follow_redirects=False).status_code == 200
            # When the user signs out through the first
            sign_out(user)
            # Then the second refuses the cookie once its key cache lapses (a second)
            wait = first.settings.key_cache_seconds + 0.2
            time.sleep(wait)
            assert copy.get("/ui/models", follow_redirects=False).status_code == 303
    finally:
        first.close()
        second.close()


def test_a_session_ends_after_an_hour_unused_or_twelve_hours_in_all() -> None:
    secret, now = b"s" * 32, 1_000_000.0
    fresh = sealed(secret, Session(None, int(now), int(now), "s1", "mark"))
    assert opened(secret, fresh, now + IDLE - 1) is not None
    assert opened(secret, fresh, now + IDLE + 1) is None  # an hour unused
    kept_in_use = sealed(secret, Session(None, int(now), int(now + LONGEST), "s1", "mark"))
    assert opened(secret, kept_in_use, now + LONGEST + 1) is None  # twelve hours in all
    assert opened(b"t" * 32, fresh, now) is None  # another secret's
    assert opened(secret, fresh.replace("mark", "mask"), now) is None  # changed
    assert opened(secret, fresh[:-2] + "éé", now) is None  # not even ASCII: not ours


def test_a_form_needs_this_sessions_token_and_this_origin(admin: TestClient) -> None:
    user = signed_in(admin, TEST_ADMIN_KEY)
    token = form_token_of(user.get("/ui/models").text)
    # A post without the token, with another session's, or from another origin is refused
    other = form_token_of(signed_in(admin, issue(admin, "eve", "viewer")).get("/ui/models").text)
    for data, origin in (({}, ORIGIN), ({"form_token": other}, ORIGIN), ({"form_token": token},
                         "https://evil.example")):  # fmt: skip
        refused = user.post("/ui/logout", data=data, headers={"origin": origin})
        assert refused.status_code == 403, (data, origin)
    # and the session is still there
    assert user.get("/ui/models", follow_redirects=False).status_code == 200
    # With both, sign-out ends it
    out = user.post(
        "/ui/logout", data={"form_token": token}, headers={"origin": ORIGIN}, follow_redirects=False
    )
    assert out.status_code == 303 and 'modelledger_session=""' in out.headers["set-cookie"]
    assert user.get("/ui/models", follow_redirects=False).status_code == 303


def test_a_scoped_key_sees_only_its_projects_models(admin: TestClient) -> None:
    secret_id = register(admin, "secret", project="alpha")
    register(admin, "shared", project="beta")
    user = signed_in(admin, issue(admin, "beta-only", "viewer", ["beta"]))
    page = user.get("/ui/models").text
    assert "shared" in page and "secret" not in page and "alpha" not in page
    hidden = user.get(f"/ui/models/{secret_id}")
    assert hidden.status_code == 404


def test_pages_are_served_under_a_strict_content_policy(admin: TestClient) -> None:
    user = signed_in(admin, TEST_ADMIN_KEY)
    page = user.get("/ui/models")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in page.text and "style=" not in page.text
    assert user.get("/ui/static/ui.css").status_code == 200
    assert user.get("/", follow_redirects=False).headers["location"] == "/ui"


def test_guessing_keys_through_the_form_is_slowed_as_on_the_api() -> None:
    ledger = make_ledger("memory://", rate_limit=0.5, rate_limit_burst=3)
    try:
        with api_client(ledger) as client:
            user = browser(client)
            codes = [user.post("/ui/login", data={"key": "guess"}).status_code for _ in range(5)]
    finally:
        ledger.close()
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]


def test_signing_in_is_refused_from_another_sites_page(admin: TestClient) -> None:
    user = browser(admin)
    forged = user.post(
        "/ui/login",
        data={"key": TEST_ADMIN_KEY},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers


def test_a_session_of_the_environments_admin_key_ends_when_the_key_changes() -> None:
    ledger = make_ledger("memory://")
    try:
        with api_client(ledger) as client:
            user = signed_in(client, TEST_ADMIN_KEY)
            assert user.get("/ui/models", follow_redirects=False).status_code == 200
            # When the operator sets another admin key (a restart with a new setting)
            keyring = client.app.state.services.keyring  # type: ignore[attr-defined]
            keyring.admin_key = "another-admin-key-0123456789abcdef0123"
            # Then the old key's session opens nothing
            assert user.get("/ui/models", follow_redirects=False).status_code == 303
    finally:
        ledger.close()


def test_a_page_sends_no_store_and_a_bad_token_is_refused_not_a_failure(
    admin: TestClient,
) -> None:
    user = signed_in(admin, TEST_ADMIN_KEY)
    assert user.get("/ui/models").headers["cache-control"] == "no-store"
    assert user.post("/ui/logout", data={"form_token": "é"}).status_code == 403


def test_a_pages_own_background_requests_do_not_keep_its_session_alive(
    admin: TestClient,
) -> None:
    model_id = register(admin, "watched")
    user = signed_in(admin, TEST_ADMIN_KEY)
    # Given a session last used two minutes ago (due for renewal when used)
    secret = admin.app.state.session_secret  # type: ignore[attr-defined]
    session = opened(secret, user.cookies.get("modelledger_session"))
    assert session is not None
    earlier = replace(session, began=session.began - 120, used=session.used - 120)
    user.cookies.clear()
    user.cookies.set("modelledger_session", sealed(secret, earlier))
    # When the page's script reloads rows by itself, the session is not renewed
    rows = user.get(f"/ui/models/{model_id}/timeline", headers={"X-ModelLedger-Background": "1"})
    assert rows.status_code == 200 and "set-cookie" not in rows.headers
    # but a page the user opens renews it
    assert "modelledger_session=" in user.get("/ui/models").headers["set-cookie"]


def test_a_stream_closes_as_its_session_idles_and_the_reconnection_is_told_it_ended(
    admin: TestClient,
) -> None:
    user = signed_in(admin, TEST_ADMIN_KEY)
    secret = admin.app.state.session_secret  # type: ignore[attr-defined]
    session = opened(secret, user.cookies.get("modelledger_session"))
    assert session is not None
    # Given a session a second short of an hour unused
    nearly_idle = replace(session, used=int(time.time()) - IDLE + 1)
    user.cookies.clear()
    user.cookies.set("modelledger_session", sealed(secret, nearly_idle), path="/ui")
    # When its page's stream has gone on past the hour, the stream just closes (a browser
    # reconnects at once, with the cookie it holds then: renewed, if the user was busy)
    closed = user.get("/ui/activity/stream")
    assert closed.status_code == 200 and "event: end" not in closed.text
    # Then the reconnection, with the same (now idle) cookie, is told to stop listening
    assert user.get("/ui/activity/stream").text.startswith("event: end")
