"""The web UI's pages under load (`bench.projections --ui`): each page's server time with
a signed-in session, at the catalogue the benchmark filled. The targets belong to the
read-speed work; this records where the pages stand."""

from __future__ import annotations

import random
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie

from bench.read_queries import QueryKind, Vocabulary
from bench.service import BENCH_KEY

SESSION_COOKIE = "modelledger_session"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def signed_in(base_url: str) -> str:
    """A session of the benchmark's key: the cookie's value."""
    body = urllib.parse.urlencode({"key": BENCH_KEY, "next": "/ui/models"}).encode()
    request = urllib.request.Request(
        f"{base_url}/ui/login", data=body, method="POST", headers={"Origin": base_url}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(request, timeout=30)
    except urllib.error.HTTPError as answer:  # the 303 after signing in
        cookie = SimpleCookie(answer.headers.get("Set-Cookie", ""))
        if answer.code == 303 and SESSION_COOKIE in cookie:
            return cookie[SESSION_COOKIE].value
        raise
    raise RuntimeError("signing in gave no session")


def ui_kinds(vocab: Vocabulary, seed: int, variants: int = 200) -> list[QueryKind]:
    """One kind per page, each over many concrete URLs of it."""
    rng = random.Random(seed)
    ids = vocab.model_ids or ("00000000-0000-0000-0000-000000000000",)

    def many(make: object) -> tuple[str, ...]:
        return tuple(make() for _ in range(variants))  # type: ignore[operator]

    return [
        QueryKind(
            "ui: catalogue, by a word",
            many(lambda: "/ui/models?" + urllib.parse.urlencode({"q": rng.choice(vocab.words)})),
            None,
        ),
        QueryKind(
            "ui: catalogue, a task and a tag",
            many(
                lambda: (
                    "/ui/models?"
                    + urllib.parse.urlencode(
                        {"task": rng.choice(vocab.tasks), "tag": rng.choice(vocab.tags)}
                    )
                )
            ),
            None,
        ),
        QueryKind("ui: a model's page", many(lambda: f"/ui/models/{rng.choice(ids)}"), None),
        QueryKind(
            "ui: leaderboard",
            many(lambda: "/ui/leaderboard?metric=accuracy&task=" + rng.choice(vocab.tasks)),
            None,
        ),
        QueryKind("ui: statistics", ("/ui/statistics",), None),
        QueryKind("ui: activity", ("/ui/activity",), None),
    ]
