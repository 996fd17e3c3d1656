"""The catalogue's read side over HTTP, as a client uses it, on SQLite and on PostgreSQL.

Every story writes through the commands, then reads with ``min_position`` set to the
last command's position (read-your-writes), and checks that the answer's ``X-Position``
is at least that position. Search, pagination, statistics, leaderboards, versions,
deployments, the bounded wait for a position, and bad query parameters.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.e2e.problems import UNKNOWN_MODEL, assert_problem, error_fields
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger

MODELS = "/api/v1/models"
SEARCH = f"{MODELS}/search"
STATISTICS = f"{MODELS}/statistics"
TOP = f"{MODELS}/top-performing"
FAR_AHEAD = 10**12


# -- the client side: commands that remember their position, reads that wait for it ------------


@dataclass
class Catalogue:
    """A client of the service: every command's position is kept, every read waits for it."""

    client: TestClient
    position: int = 0

    # -- commands --------------------------------------------------------------------------------

    def send(self, method: str, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        response = self.client.request(method, path, json=body)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        answer: dict[str, Any] = response.json()
        self.position = max(self.position, answer["position"])
        return answer

    def create(
        self,
        name: str,
        *,
        task: str = "classification",
        framework: str = "pytorch",
        **fields: Any,
    ) -> str:
        body = {"name": name, "task": task, "framework": framework, **fields}
        model_id: str = self.send("POST", MODELS, body, status=201)["id"]
        return model_id

    def update(self, model_id: str, **changes: Any) -> None:
        self.send("PATCH", f"{MODELS}/{model_id}", changes)

    def archive(self, model_id: str) -> None:
        self.send("DELETE", f"{MODELS}/{model_id}")

    def start(self, model_id: str) -> str:
        body = {"dataset": "s3://data/train"}
        run_id: str = self.send("POST", f"{MODELS}/{model_id}/train", body, status=202)["run_id"]
        return run_id

    def complete(
        self, model_id: str, run_id: str, metrics: dict[str, float], uri: str | None = None
    ) -> int:
        body: dict[str, Any] = {"metrics": metrics}
        if uri is not None:
            body["artifact_uri"] = uri
        self.send("POST", f"{MODELS}/{model_id}/training-runs/{run_id}/complete", body)
        return self.position

    def fail(self, model_id: str, run_id: str) -> None:
        body = {"reason": "out of memory"}
        self.send("POST", f"{MODELS}/{model_id}/training-runs/{run_id}/fail", body)

    def train(self, model_id: str, **metrics: float) -> None:
        """One training run, started and completed: a new version with these metrics."""
        self.complete(model_id, self.start(model_id), metrics)

    def deploy(self, model_id: str, environment: str, version: int | None = None) -> int:
        body: dict[str, Any] = {"environment": environment}
        if version is not None:
            body["model_version"] = version
            body["endpoint_url"] = f"https://serve.example/{environment}/v{version}"
        self.send("POST", f"{MODELS}/{model_id}/deploy", body)
        return self.position

    def undeploy(self, model_id: str, environment: str) -> int:
        self.send("POST", f"{MODELS}/{model_id}/undeploy", {"environment": environment})
        return self.position

    def roll_back(self, model_id: str, environment: str) -> int:
        self.send("POST", f"{MODELS}/{model_id}/rollback", {"environment": environment})
        return self.position

    # -- queries ---------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Response:
        """GET once the read side includes every write sent so far."""
        params.setdefault("min_position", self.position)
        response: Response = self.client.get(path, params=params)
        if response.status_code == 200:
            assert int(response.headers["X-Position"]) >= params["min_position"], response.headers
        return response

    def read(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, f"GET {path} {params}: {response.text}"
        body: dict[str, Any] = response.json()
        return body

    def search(self, **params: Any) -> list[str]:
        """The names of one page of search hits, in order."""
        return [item["name"] for item in self.read(SEARCH, **params)["items"]]

    def walk(self, cursor: str | None = None, **params: Any) -> Iterator[list[dict[str, Any]]]:
        """Every page of a search (from ``cursor``, if given), following next_cursor."""
        while True:
            page = self.read(SEARCH, **params, **({"cursor": cursor} if cursor else {}))
            yield page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return


@pytest.fixture
def catalogue(client: TestClient) -> Catalogue:
    return Catalogue(client)


def names_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


def names_the_field(problem: dict[str, Any], field: str) -> bool:
    """The problem names the field, bare (``cursor``) or located (``query.tag.1``)."""
    return any(field in name.split(".") for name in error_fields(problem))


def cursor_of(scope: list[Any], key: Any, model_id: Any) -> str:
    """A cursor forged by a client, in the service's (opaque, but guessable) encoding."""
    raw = json.dumps([scope, key, model_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- 1. search: full text ------------------------------------------------------------------------


def test_full_text_finds_words_of_names_descriptions_and_tags_as_prefixes(
    catalogue: Catalogue,
) -> None:
    # Given three models with names, descriptions and tags
    catalogue.create(
        "fraud-detector", description="flags suspicious card payments", tags=["finance"]
    )
    churn = catalogue.create(
        "churn-predictor", description="which customers will leave", tags=["tabular"]
    )
    catalogue.create(
        "receipt-reader", description="reads fraud evidence from scanned receipts", tags=["ocr"]
    )
    # When searching by a word of a name, of a description, of a tag
    # Then the models holding that word are found (in name order)
    assert catalogue.search(q="detector") == ["fraud-detector"]
    assert catalogue.search(q="customers") == ["churn-predictor"]
    assert catalogue.search(q="tabular") == ["churn-predictor"]
    assert catalogue.search(q="fraud") == ["fraud-detector", "receipt-reader"]
    # And every word is a prefix, in any case
    assert catalogue.search(q="fra") == ["fraud-detector", "receipt-reader"]
    assert catalogue.search(q="CUST") == ["churn-predictor"]
    # And every word must match (in any of the fields)
    assert catalogue.search(q="fraud scanned") == ["receipt-reader"]
    assert catalogue.search(q="fraud finance") == ["fraud-detector"]
    assert catalogue.search(q="fraud tabular") == []

    # When a model's description and tags change
    catalogue.update(churn, description="predicts subscriber churn", tags=["retention"])
    # Then search finds it by the new words and no longer by the old ones
    assert catalogue.search(q="subscriber retention") == ["churn-predictor"]
    assert catalogue.search(q="customers") == []
    assert catalogue.search(q="tabular") == []

    # When searching with odd but wordy text
    for q in ["_", "a_b", "don't", "ünïcödé", "日本語", "x" * 200, "fraud*", "a:b|c&!d"]:
        response = catalogue.get(SEARCH, q=q)
        # Then the answer is a page, never an error
        assert response.status_code == 200, (q, response.text)
    # And quotes and operators of the search engines mean nothing special
    assert catalogue.search(q='"fraud" OR nothing') == []
    assert catalogue.search(q="-scanned") == ["receipt-reader"]


# -- 1. search: filters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """A small catalogue: one model in each status, spread over projects, tasks, owners."""

    deployed: str = "alpha"  # vision, classification, pytorch, alice, tags prod+small
    training: str = "bravo"  # vision, detection, tensorflow, bob, tag prod
    trained: str = "charlie"  # nlp, classification, jax, alice, tag small
    failed: str = "delta"  # nlp, translation, pytorch, no owner given
    created: str = "echo"  # nlp, classification, sklearn, carol
    archived: str = "foxtrot"  # vision, classification, pytorch, alice, tag prod


def a_cast(catalogue: Catalogue) -> Cast:
    cast = Cast()
    alpha = catalogue.create(cast.deployed, project="vision", owner="alice", tags=["prod", "small"])
    bravo = catalogue.create(
        cast.training,
        project="vision",
        task="detection",
        framework="tensorflow",
        owner="bob",
        tags=["prod"],
    )
    charlie = catalogue.create(
        cast.trained, project="nlp", framework="jax", owner="alice", tags=["small"]
    )
    delta = catalogue.create(cast.failed, project="nlp", task="translation")
    catalogue.create(cast.created, project="nlp", framework="sklearn", owner="carol")
    foxtrot = catalogue.create(cast.archived, project="vision", owner="alice", tags=["prod"])
    catalogue.train(alpha, accuracy=0.9)
    catalogue.deploy(alpha, "production")
    catalogue.start(bravo)
    catalogue.train(charlie, accuracy=0.8)
    catalogue.fail(delta, catalogue.start(delta))
    catalogue.archive(foxtrot)
    return cast


def test_filters_narrow_the_search_the_same_on_models_and_search(
    catalogue: Catalogue,
) -> None:
    # Given one model in each status, over two projects, three tasks, four frameworks
    c = a_cast(catalogue)
    # When searching without filters
    # Then every model but the archived one is listed
    assert catalogue.search() == [c.deployed, c.training, c.trained, c.failed, c.created]
    # When filtering by project, task, framework or owner
    # Then only the models that have it are listed (task and framework in any case)
    assert catalogue.search(project="vision") == [c.deployed, c.training]
    assert catalogue.search(project="nlp") == [c.trained, c.failed, c.created]
    assert catalogue.search(task="classification") == [c.deployed, c.trained, c.created]
    assert catalogue.search(task="Detection") == [c.training]
    assert catalogue.search(framework="pytorch") == [c.deployed, c.failed]
    assert catalogue.search(framework="JAX") == [c.trained]
    assert catalogue.search(owner="alice") == [c.deployed, c.trained]
    assert catalogue.search(owner="admin") == [
        c.failed
    ]  # the creator (the key's name), when none given
    assert catalogue.search(project="nlp", task="classification") == [c.trained, c.created]
    assert catalogue.search(project="vision", owner="carol") == []
    # When filtering by tags, one or several
    # Then a model must have every tag asked for
    assert catalogue.search(tag="prod") == [c.deployed, c.training]
    assert catalogue.search(tag="small") == [c.deployed, c.trained]
    assert catalogue.search(tag=["prod", "small"]) == [c.deployed]
    assert catalogue.search(tag=["prod", "nowhere"]) == []
    # When filtering by status
    # Then each status finds its model, archived included when asked for
    assert catalogue.search(status="deployed") == [c.deployed]
    assert catalogue.search(status="training") == [c.training]
    assert catalogue.search(status="trained") == [c.trained]
    assert catalogue.search(status="failed") == [c.failed]
    assert catalogue.search(status="created") == [c.created]
    assert catalogue.search(status="archived") == [c.archived]
    assert catalogue.search(status="archived", tag="prod", owner="alice") == [c.archived]

    for params in (
        {},
        {"q": "a", "limit": 2},
        {"project": "vision", "tag": ["prod", "small"], "sort": "created_at"},
        {"metric": "accuracy", "sort": "metric", "order": "asc"},
        {"status": "archived"},
    ):
        # When the same query goes to /models and to /models/search
        listed = catalogue.get(MODELS, **params)
        searched = catalogue.get(SEARCH, **params)
        # Then the answers are the same
        assert listed.status_code == searched.status_code == 200
        assert listed.json() == searched.json(), params


def test_a_metric_range_applies_to_each_models_best_value(catalogue: Catalogue) -> None:
    # Given models with accuracies 0.7, 0.8 and 0.9 (the last: 0.6 first, then 0.9),
    # losses 0.5 then 0.2 for the first, deployed; and one model never trained
    low = catalogue.create(
        "low", project="risk", description="card fraud", tags=["finance"], owner="ann"
    )
    catalogue.train(low, accuracy=0.7, loss=0.5)
    catalogue.train(low, accuracy=0.65, loss=0.2)
    catalogue.deploy(low, "production", version=1)
    catalogue.train(catalogue.create("mid"), accuracy=0.8)
    high = catalogue.create("high")
    catalogue.train(high, accuracy=0.6)
    catalogue.train(high, accuracy=0.9)
    catalogue.create("untrained")
    # When searching by a metric, with and without bounds
    # Then a model is in when it has the metric and its best value is within the bounds
    assert catalogue.search(metric="accuracy") == ["high", "low", "mid"]
    assert catalogue.search(metric="accuracy", min_value=0.75) == ["high", "mid"]
    assert catalogue.search(metric="accuracy", max_value=0.85) == ["low", "mid"]
    assert catalogue.search(metric="accuracy", min_value=0.75, max_value=0.85) == ["mid"]
    assert catalogue.search(metric="accuracy", min_value=0.8, max_value=0.8) == ["mid"]
    assert catalogue.search(metric="accuracy", min_value=0.95) == []
    # And for a lower-is-better metric the best value is the lowest
    assert catalogue.search(metric="loss") == ["low"]
    assert catalogue.search(metric="loss", max_value=0.3) == ["low"]
    assert catalogue.search(metric="loss", min_value=0.3) == []
    # And a metric no model has finds nothing
    assert catalogue.search(metric="f1") == []

    # When a hit is read
    [hit] = catalogue.read(SEARCH, q="fraud")["items"]
    # Then it shows what the model is, its best value of each metric (with the version
    # that reached it) and where it serves
    assert hit["id"] == low
    assert (hit["name"], hit["project"], hit["description"]) == ("low", "risk", "card fraud")
    assert (hit["task"], hit["framework"], hit["owner"]) == ("classification", "pytorch", "ann")
    assert (hit["tags"], hit["status"], hit["latest_version"]) == (["finance"], "deployed", 2)
    assert hit["best_metrics"] == {
        "accuracy": {"value": 0.7, "model_version": 1},
        "loss": {"value": 0.2, "model_version": 2},
    }
    assert hit["deployments"] == {
        "production": {"model_version": 1, "endpoint_url": "https://serve.example/production/v1"}
    }
    assert hit["created_at"] <= hit["updated_at"]


# -- 1. search: sorting --------------------------------------------------------------------------


def test_every_sort_key_in_both_directions(catalogue: Catalogue) -> None:
    # Given four models created in the order delta, bravo, charlie, alpha;
    # all but delta trained (bravo, alpha, charlie), then charlie updated
    catalogue.create("delta")
    bravo = catalogue.create("bravo")
    charlie = catalogue.create("charlie")
    alpha = catalogue.create("alpha")
    catalogue.train(bravo, accuracy=0.9, loss=0.3)
    catalogue.train(alpha, accuracy=0.7, loss=0.1)
    catalogue.train(charlie, accuracy=0.8, loss=0.2)
    catalogue.update(charlie, description="touched last")
    # When sorting by name: ascending by default, reversed with order=desc
    assert catalogue.search() == ["alpha", "bravo", "charlie", "delta"]
    assert catalogue.search(sort="name", order="asc") == ["alpha", "bravo", "charlie", "delta"]
    assert catalogue.search(sort="name", order="desc") == ["delta", "charlie", "bravo", "alpha"]
    # When sorting by creation time: newest first by default
    by_creation = ["alpha", "charlie", "bravo", "delta"]
    assert catalogue.search(sort="created_at") == by_creation
    assert catalogue.search(sort="created_at", order="asc") == by_creation[::-1]
    # When sorting by update time: newest first by default
    by_update = ["charlie", "alpha", "bravo", "delta"]
    assert catalogue.search(sort="updated_at") == by_update
    assert catalogue.search(sort="updated_at", order="asc") == by_update[::-1]
    # When sorting by a higher-is-better metric: best (highest) first by default,
    # and only the models that have the metric
    assert catalogue.search(sort="metric", metric="accuracy") == ["bravo", "charlie", "alpha"]
    asc = catalogue.search(sort="metric", metric="accuracy", order="asc")
    assert asc == ["alpha", "charlie", "bravo"]
    # When sorting by a lower-is-better metric: best (lowest) first by default
    assert catalogue.search(sort="metric", metric="loss") == ["alpha", "charlie", "bravo"]
    desc = catalogue.search(sort="metric", metric="loss", order="desc")
    assert desc == ["bravo", "charlie", "alpha"]
    # And the times shown agree with the order given
    items = catalogue.read(SEARCH, sort="updated_at")["items"]
    times = [item["updated_at"] for item in items]
    assert times == sorted(times, reverse=True)


# -- 2. pagination -------------------------------------------------------------------------------


def test_walking_the_pages_yields_every_model_once_in_order(catalogue: Catalogue) -> None:
    # Given an empty catalogue
    # When searching
    # Then the answer is one empty page, without a cursor
    assert catalogue.read(SEARCH) == {"items": [], "next_cursor": None}

    # Given five trained models (and an archived one, which is not listed)
    for name, accuracy in [("e", 0.5), ("b", 0.9), ("d", 0.7), ("a", 0.7), ("c", 0.6)]:
        catalogue.train(catalogue.create(name), accuracy=accuracy, loss=1 - accuracy)
    catalogue.archive(catalogue.create("archived"))
    for params in (
        {"sort": "name"},
        {"sort": "name", "order": "desc"},
        {"sort": "created_at"},
        {"sort": "updated_at", "order": "asc"},
        {"sort": "metric", "metric": "accuracy"},  # ties (0.7) broken by id
        {"sort": "metric", "metric": "loss", "order": "desc"},
    ):
        # When walking every page, two at a time
        pages = list(catalogue.walk(limit=2, **params))
        # Then there are three pages (2, 2, 1); the last has no next cursor
        assert [len(page) for page in pages] == [2, 2, 1], params
        # And together they are the whole listing, once each, in its order
        whole = catalogue.read(SEARCH, limit=100, **params)
        assert whole["next_cursor"] is None
        walked = [item for page in pages for item in page]
        assert names_of(walked) == names_of(whole["items"]), params
        assert sorted(names_of(walked)) == ["a", "b", "c", "d", "e"]
    # When a page is exactly full
    # Then it is the last: no cursor to an empty page
    exact = catalogue.read(SEARCH, limit=5)
    assert (len(exact["items"]), exact["next_cursor"]) == (5, None)
    # When nothing matches
    # Then the answer is one empty page
    assert catalogue.read(SEARCH, q="nothing", limit=1) == {"items": [], "next_cursor": None}


def test_pages_are_stable_while_models_are_written(catalogue: Catalogue) -> None:
    # Given six models a..f, read in pages of two by name
    ids = {name: catalogue.create(name) for name in "abcdef"}
    first = catalogue.read(SEARCH, limit=2)
    assert names_of(first["items"]) == ["a", "b"]
    # When, between pages, models are created (before and after the cursor),
    # models already seen and not yet seen are updated, one is trained, one archived
    catalogue.create("aa")  # sorts before the cursor: not seen in this walk
    catalogue.create("zz")  # sorts after it: seen
    catalogue.update(ids["a"], description="seen already")
    catalogue.update(ids["e"], description="not yet seen")
    catalogue.train(ids["d"], accuracy=0.5)
    catalogue.archive(ids["f"])
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor is not None:
        page = catalogue.read(SEARCH, limit=2, cursor=cursor)
        rest += page["items"]
        cursor = page["next_cursor"]
        if cursor is not None:  # and more writes, while walking
            catalogue.create(f"new-{len(rest)}")
            catalogue.update(ids["c"], description=f"again {len(rest)}")
    # Then every model whose name did not change is seen exactly once, in order,
    # the archived one no more, and models created behind the cursor not at all
    walked = names_of(first["items"]) + names_of(rest)
    assert walked == ["a", "b", "c", "d", "e", "new-2", "new-4", "zz"]


def test_pages_by_update_time_skip_and_repeat_nothing_that_was_not_written(
    catalogue: Catalogue,
) -> None:
    # Given five models, read in pages of two by update time, oldest first
    ids = {name: catalogue.create(name) for name in "abcde"}
    first = catalogue.read(SEARCH, sort="updated_at", order="asc", limit=2)
    assert names_of(first["items"]) == ["a", "b"]
    # When one model already seen (a) and one not yet seen (c) are updated
    catalogue.update(ids["a"], description="moved to the end")
    catalogue.update(ids["c"], description="moved to the end too")
    rest = [
        item
        for page in catalogue.walk(
            sort="updated_at", order="asc", limit=2, cursor=first["next_cursor"]
        )
        for item in page
    ]
    # Then the untouched models (b, d, e) are each seen once, in order; the moved ones
    # show up where their new time puts them
    walked = names_of(first["items"]) + names_of(rest)
    assert walked == ["a", "b", "d", "e", "a", "c"]


BY_NAME = ["name", "asc", None, None]
BY_ACCURACY = ["metric", "desc", "accuracy", "max"]  # (its highest value)
ACCURACY = {"sort": "metric", "metric": "accuracy"}
ID = "814ce9c6-6ba8-587b-bcbe-6cf560e9b06f"
FORGED_CURSORS: list[tuple[str, dict[str, Any]]] = [
    ("garbage", {"cursor": "not a cursor!"}),
    ("not json", {"cursor": "bm90IGpzb24"}),
    ("wrong shape", {"cursor": cursor_of([], 1, 2)}),
    ("empty list", {"cursor": "W10"}),
    ("deeply nested", {"cursor": base64.urlsafe_b64encode(b"[" * 1400).decode()}),
    ("list key", {"cursor": cursor_of(BY_NAME, ["a"], ID)}),
    ("no id", {"cursor": cursor_of(BY_NAME, "a", None)}),
    ("number id", {"cursor": cursor_of(BY_NAME, "a", 7)}),
    ("bool key", {"cursor": cursor_of(BY_NAME, True, ID)}),
    # the right scope, a key the sort column cannot be compared with
    ("number for a name", {"cursor": cursor_of(BY_NAME, 5, ID)}),
    ("number for a time", {"cursor": cursor_of(["created_at", None, None], 1.5, ID)}),
    ("NUL in the key", {"cursor": cursor_of(BY_NAME, "a\x00", ID)}),
    ("NUL in the id", {"cursor": cursor_of(BY_NAME, "a", "a\x00")}),
    ("text for a metric", {"cursor": cursor_of(BY_ACCURACY, "high", ID), **ACCURACY}),
    ("huge number", {"cursor": cursor_of(BY_ACCURACY, 10**400, ID), **ACCURACY}),
    ("NaN", {"cursor": cursor_of(BY_ACCURACY, float("nan"), ID), **ACCURACY}),
]


def test_a_cursor_not_given_for_this_search_is_refused(catalogue: Catalogue) -> None:
    # Given trained models, and a cursor from a search sorted by name, ascending
    for name in "abc":
        catalogue.train(catalogue.create(name), accuracy=0.5)
    cursor = catalogue.read(SEARCH, limit=1)["next_cursor"]
    assert cursor is not None
    # (the same order written out is the same search)
    same = catalogue.get(SEARCH, limit=1, cursor=cursor, order="asc")
    assert same.status_code == 200, same.text
    for changed in ({"sort": "created_at"}, {"order": "desc"}, ACCURACY):
        # When it is used with another sort or order
        response = catalogue.get(SEARCH, limit=1, cursor=cursor, **changed)
        # Then it is refused, naming the cursor
        problem = assert_problem(response, 422)
        assert names_the_field(problem, "cursor"), (changed, problem)
    for case, params in FORGED_CURSORS:
        # When a search comes with a cursor that is garbage or forged
        response = catalogue.get(SEARCH, limit=1, **params)
        # Then it is refused with 422 naming the cursor (never a 500)
        assert response.status_code == 422, (case, response.text)
        problem = assert_problem(response, 422)
        assert names_the_field(problem, "cursor"), (case, problem)


# -- 3. statistics -------------------------------------------------------------------------------


def test_statistics_count_what_the_commands_did(catalogue: Catalogue) -> None:
    # Given, in project "risk":
    #   fraud (classification, pytorch): trained twice (accuracy 0.8, 0.9; loss 0.3, 0.2),
    #     deployed to production and staging
    #   spots (detection, tensorflow): one run failed, one still running
    # and in project "growth":
    #   churn (classification, sklearn): trained (accuracy 0.7), deployed to production
    #   price (regression, sklearn): created only
    #   old (regression, pytorch): archived
    fraud = catalogue.create("fraud", project="risk")
    catalogue.train(fraud, accuracy=0.8, loss=0.3)
    catalogue.train(fraud, accuracy=0.9, loss=0.2)
    catalogue.deploy(fraud, "production")
    catalogue.deploy(fraud, "staging")
    spots = catalogue.create("spots", project="risk", task="detection", framework="tensorflow")
    catalogue.fail(spots, catalogue.start(spots))
    catalogue.start(spots)
    churn = catalogue.create("churn", project="growth", framework="sklearn")
    catalogue.train(churn, accuracy=0.7)
    catalogue.deploy(churn, "production")
    catalogue.create("price", project="growth", task="regression", framework="sklearn")
    catalogue.archive(catalogue.create("old", project="growth", task="regression"))

    # When asking for the statistics of the whole catalogue
    whole = catalogue.read(STATISTICS)
    # Then they count every model, run, deployment and trained version
    assert whole["total_models"] == 5
    assert whole["by_status"] == {
        "archived": 1,
        "created": 1,
        "deployed": 2,
        "training": 1,
    }
    assert whole["by_task"] == {"classification": 2, "detection": 1, "regression": 2}
    assert whole["by_framework"] == {"pytorch": 2, "sklearn": 2, "tensorflow": 1}
    assert whole["training_runs"] == {"started": 5, "completed": 3, "failed": 1}
    assert whole["active_deployments"] == {"production": 2, "staging": 1}
    assert_metrics(
        whole["metrics"],
        {"accuracy": (3, 0.8, 0.7, 0.9), "loss": (2, 0.25, 0.2, 0.3)},
    )

    # When asking for one project
    risk = catalogue.read(STATISTICS, project="risk")
    # Then only its models count
    assert risk["total_models"] == 2
    assert risk["by_status"] == {"deployed": 1, "training": 1}
    assert risk["by_task"] == {"classification": 1, "detection": 1}
    assert risk["by_framework"] == {"pytorch": 1, "tensorflow": 1}
    assert risk["training_runs"] == {"started": 4, "completed": 2, "failed": 1}
    assert risk["active_deployments"] == {"production": 1, "staging": 1}
    assert_metrics(risk["metrics"], {"accuracy": (2, 0.85, 0.8, 0.9), "loss": (2, 0.25, 0.2, 0.3)})

    # When asking for one task, and for a task within a project
    classification = catalogue.read(STATISTICS, task="classification")
    growth_classification = catalogue.read(STATISTICS, project="growth", task="classification")
    # Then only the models of that task (and project) count
    assert classification["total_models"] == 2
    assert classification["by_framework"] == {"pytorch": 1, "sklearn": 1}
    assert classification["training_runs"] == {"started": 3, "completed": 3, "failed": 0}
    assert classification["active_deployments"] == {"production": 2, "staging": 1}
    assert_metrics(
        classification["metrics"], {"accuracy": (3, 0.8, 0.7, 0.9), "loss": (2, 0.25, 0.2, 0.3)}
    )
    assert growth_classification["total_models"] == 1
    assert growth_classification["by_status"] == {"deployed": 1}
    assert_metrics(growth_classification["metrics"], {"accuracy": (1, 0.7, 0.7, 0.7)})

    # When fraud leaves staging and churn leaves production
    catalogue.undeploy(fraud, "staging")
    catalogue.undeploy(churn, "production")
    after = catalogue.read(STATISTICS)
    # Then the active deployments drop, and churn is counted as trained again
    assert after["active_deployments"] == {"production": 1}
    assert after["by_status"] == {
        "archived": 1,
        "created": 1,
        "deployed": 1,
        "trained": 1,
        "training": 1,
    }
    # And a project or task nobody used has empty statistics
    assert catalogue.read(STATISTICS, project="nobody") == {
        "total_models": 0,
        "by_status": {},
        "by_task": {},
        "by_framework": {},
        "training_runs": {"started": 0, "completed": 0, "failed": 0},
        "active_deployments": {},
        "metrics": {},
    }


def assert_metrics(
    actual: dict[str, dict[str, float]], expected: dict[str, tuple[int, float, float, float]]
) -> None:
    assert set(actual) == set(expected), actual
    for name, (count, mean, low, high) in expected.items():
        got = actual[name]
        assert got["count"] == count, (name, got)
        assert got["mean"] == pytest.approx(mean), (name, got)
        assert [got["min"], got["max"]] == pytest.approx([low, high]), (name, got)


# -- 4. top-performing ---------------------------------------------------------------------------


def a_leaderboard(catalogue: Catalogue) -> dict[str, str]:
    """a (risk, classification): v1 accuracy 0.8 loss 0.1, v2 accuracy 0.95 loss 0.4
    b (growth, classification): v1 accuracy 0.9 loss 0.3
    c (risk, detection): v1 accuracy 0.85 loss 0.2, calibration_gap 0.05
    d (risk, classification): accuracy 0.99, archived
    e (growth, detection): never trained
    """
    ids = {
        "a": catalogue.create("a", project="risk"),
        "b": catalogue.create("b", project="growth"),
        "c": catalogue.create("c", project="risk", task="detection"),
        "d": catalogue.create("d", project="risk"),
        "e": catalogue.create("e", project="growth", task="detection"),
    }
    catalogue.train(ids["a"], accuracy=0.8, loss=0.1, calibration_gap=0.3)
    catalogue.train(ids["a"], accuracy=0.95, loss=0.4, calibration_gap=0.01)
    catalogue.train(ids["b"], accuracy=0.9, loss=0.3)
    catalogue.train(ids["c"], accuracy=0.85, loss=0.2, calibration_gap=0.05)
    catalogue.train(ids["d"], accuracy=0.99, loss=0.0)
    catalogue.archive(ids["d"])
    return ids


def ranking(board: dict[str, Any]) -> list[tuple[int, str, int, float]]:
    return [
        (item["rank"], item["name"], item["model_version"], item["value"])
        for item in board["items"]
    ]


def test_top_performing_ranks_each_model_by_its_best_version(catalogue: Catalogue) -> None:
    # Given models trained with accuracy and loss, a trained twice, d archived
    ids = a_leaderboard(catalogue)
    # When asking for the top models by accuracy
    board = catalogue.read(TOP, metric="accuracy")
    # Then they are ranked highest first, each by its best version (a by its second),
    # the archived one left out, the untrained one absent
    assert (board["metric"], board["order"]) == ("accuracy", "desc")
    assert ranking(board) == [(1, "a", 2, 0.95), (2, "b", 1, 0.9), (3, "c", 1, 0.85)]
    first = board["items"][0]
    assert (first["id"], first["project"], first["task"]) == (ids["a"], "risk", "classification")
    # When asking by loss, a lower-is-better metric
    board = catalogue.read(TOP, metric="loss")
    # Then they are ranked lowest first, a by its first version this time
    assert board["order"] == "asc"
    assert ranking(board) == [(1, "a", 1, 0.1), (2, "c", 1, 0.2), (3, "b", 1, 0.3)]

    # When the order is given for a metric the service does not know as lower-is-better
    # Then lower values rank first, each model by its lowest value
    board = catalogue.read(TOP, metric="calibration_gap", order="asc")
    assert board["order"] == "asc"
    assert ranking(board) == [(1, "a", 2, 0.01), (2, "c", 1, 0.05)]
    # And without the order, higher ranks first
    assert ranking(catalogue.read(TOP, metric="calibration_gap")) == [
        (1, "a", 1, 0.3),
        (2, "c", 1, 0.05),
    ]
    # When overriding a lower-is-better metric's order
    board = catalogue.read(TOP, metric="loss", order="desc")
    assert board["order"] == "desc"
    assert ranking(board) == [(1, "a", 2, 0.4), (2, "b", 1, 0.3), (3, "c", 1, 0.2)]
    # When filtering by task or project, and limiting
    # Then only those models are ranked, from 1
    by_task = catalogue.read(TOP, metric="accuracy", task="classification")
    assert ranking(by_task) == [(1, "a", 2, 0.95), (2, "b", 1, 0.9)]
    by_project = catalogue.read(TOP, metric="accuracy", project="risk")
    assert ranking(by_project) == [(1, "a", 2, 0.95), (2, "c", 1, 0.85)]
    assert ranking(catalogue.read(TOP, metric="accuracy", limit=2)) == [
        (1, "a", 2, 0.95),
        (2, "b", 1, 0.9),
    ]
    only = catalogue.read(TOP, metric="accuracy", project="growth", task="classification")
    assert ranking(only) == [(1, "b", 1, 0.9)]
    # When asking for a metric no model has
    # Then the board is empty
    unknown = catalogue.read(TOP, metric="bleu")
    assert (unknown["metric"], unknown["items"]) == ("bleu", [])


# -- 5. versions and deployments -----------------------------------------------------------------


def test_versions_list_every_trained_version_in_order_or_404(catalogue: Catalogue) -> None:
    # Given a model trained twice, a failed run in between, then trained once more
    model_id = catalogue.create("fraud-detector")
    first_run = catalogue.start(model_id)
    first = catalogue.complete(model_id, first_run, {"accuracy": 0.8}, uri="s3://models/1")
    catalogue.fail(model_id, catalogue.start(model_id))
    second_run = catalogue.start(model_id)
    second = catalogue.complete(model_id, second_run, {"accuracy": 0.9, "loss": 0.1})
    third_run = catalogue.start(model_id)
    third = catalogue.complete(model_id, third_run, {"accuracy": 0.85}, uri="s3://models/3")
    # When listing its versions
    response = catalogue.get(f"{MODELS}/{model_id}/versions")
    # Then the three versions are listed in order, with their runs, metrics and artifacts,
    # each at the position of the event that made it
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == model_id
    assert [
        (v["number"], v["run_id"], v["metrics"], v["artifact_uri"], v["position"])
        for v in body["items"]
    ] == [
        (1, first_run, {"accuracy": 0.8}, "s3://models/1", first),
        (2, second_run, {"accuracy": 0.9, "loss": 0.1}, None, second),
        (3, third_run, {"accuracy": 0.85}, "s3://models/3", third),
    ]
    assert all(v["created_by"] == "admin" for v in body["items"])
    times = [v["created_at"] for v in body["items"]]
    assert times == sorted(times)
    assert int(response.headers["X-Position"]) >= third

    # Given a model only created
    fresh = catalogue.create("fresh")
    # When listing its versions and deployments
    # Then both are empty
    assert catalogue.read(f"{MODELS}/{fresh}/versions") == {"id": fresh, "items": []}
    assert catalogue.read(f"{MODELS}/{fresh}/deployments") == {
        "id": fresh,
        "as_of": None,
        "current": {},
        "history": [],
    }
    for what in ("versions", "deployments"):
        # When asking for the versions or deployments of an unknown id
        response = catalogue.get(f"{MODELS}/{UNKNOWN_MODEL}/{what}")
        # Then it is 404 problem+json
        assert_problem(response, 404)


def test_deployments_show_what_serves_now_and_every_stretch_before(
    catalogue: Catalogue,
) -> None:
    # Given a model with two versions:
    # v1 to production, then v2 to production, v1 to staging, production rolled back,
    # staging undeployed
    model_id = catalogue.create("fraud-detector")
    catalogue.train(model_id, accuracy=0.8)
    catalogue.train(model_id, accuracy=0.9)
    v1_production = catalogue.deploy(model_id, "production", version=1)
    v2_production = catalogue.deploy(model_id, "production", version=2)
    v1_staging = catalogue.deploy(model_id, "staging", version=1)
    rolled_back = catalogue.roll_back(model_id, "production")
    undeployed = catalogue.undeploy(model_id, "staging")
    # When reading its deployments
    body = catalogue.read(f"{MODELS}/{model_id}/deployments")
    # Then the history holds every stretch, per environment, in order, from and to positions
    assert body["id"] == model_id
    history = body["history"]
    assert [
        (
            s["environment"],
            s["model_version"],
            s["action"],
            s["from_position"],
            s["to_position"],
            s["ended_by"],
        )
        for s in history
    ] == [
        ("production", 1, "deployed", v1_production, v2_production, "deployed"),
        ("production", 2, "deployed", v2_production, rolled_back, "rolled_back"),
        ("production", 1, "rolled_back", rolled_back, None, None),
        ("staging", 1, "deployed", v1_staging, undeployed, "undeployed"),
    ]
    # And each stretch says where it served, who deployed it, and when it started and ended
    assert [s["endpoint_url"] for s in history] == [
        "https://serve.example/production/v1",
        "https://serve.example/production/v2",
        "https://serve.example/production/v1",
        "https://serve.example/staging/v1",
    ]
    assert all(s["deployed_by"] == "admin" for s in history)
    for stretch in history:
        assert stretch["from_time"]
        if stretch["to_position"] is not None:
            assert stretch["to_time"] and stretch["to_time"] >= stretch["from_time"]
        else:
            assert stretch["to_time"] is None
    # And only production serves now: v1 again, by the rollback
    assert body["current"] == {"production": history[2]}


# -- 6. read-your-writes -------------------------------------------------------------------------


def test_every_query_answers_at_or_after_the_position_asked(catalogue: Catalogue) -> None:
    # Given a model trained and deployed: its last write is at `position`
    model_id = catalogue.create("fraud-detector", description="card fraud")
    catalogue.train(model_id, accuracy=0.9)
    position = catalogue.deploy(model_id, "production")
    # When each query asks for that position
    for path, params in [
        (MODELS, {}),
        (SEARCH, {"q": "fraud"}),
        (STATISTICS, {}),
        (TOP, {"metric": "accuracy"}),
        (f"{MODELS}/{model_id}", {}),
        (f"{MODELS}/{model_id}/versions", {}),
        (f"{MODELS}/{model_id}/deployments", {}),
    ]:
        response = catalogue.client.get(path, params={**params, "min_position": position})
        # Then each answers at that position or later, and shows the write
        assert response.status_code == 200, (path, response.text)
        assert int(response.headers["X-Position"]) >= position, path
    assert catalogue.read(f"{MODELS}/{model_id}")["status"] == "deployed"
    assert catalogue.search(q="fraud", status="deployed") == ["fraud-detector"]
    assert catalogue.read(STATISTICS)["active_deployments"] == {"production": 1}
    assert (
        catalogue.read(f"{MODELS}/{model_id}/deployments")["current"]["production"]["from_position"]
        == position
    )
    # And without min_position every answer still says the position it reflects
    for path in (MODELS, STATISTICS, f"{MODELS}/{model_id}/versions"):
        assert int(catalogue.client.get(path).headers["X-Position"]) >= 0


@pytest.fixture
def impatient_client(store_url: str) -> Iterator[TestClient]:
    """A service that waits at most 0.2 s for a position."""
    ledger = make_ledger(store_url, min_position_timeout=0.2)
    with api_client(ledger) as test_client:
        yield test_client
    ledger.close()


def test_a_position_past_the_end_of_the_log_is_refused_at_once(
    impatient_client: TestClient,
) -> None:
    # Given a service with one model, that waits at most 0.2 s for a position
    catalogue = Catalogue(impatient_client)
    model_id = catalogue.create("fraud-detector")
    for path, params in [
        (MODELS, {}),
        (SEARCH, {"q": "fraud"}),
        (STATISTICS, {}),
        (TOP, {"metric": "accuracy"}),
        (f"{MODELS}/{model_id}", {}),
        (f"{MODELS}/{model_id}/versions", {}),
        (f"{MODELS}/{model_id}/deployments", {}),
    ]:
        # When a query asks for a position far beyond the head of the log
        response = catalogue.get(path, min_position=FAR_AHEAD, **params)
        # Then it is refused, naming min_position: no wait and no retry can reach it
        problem = assert_problem(response, 422)
        assert names_the_field(problem, "min_position"), (path, problem)
        assert "past the end of the log" in problem["detail"]


def test_a_position_in_the_log_not_yet_projected_is_503_with_retry_after() -> None:
    # Given a service whose projections do not run, that waits at most 0.2 s for a position
    ledger = make_ledger("memory://", min_position_timeout=0.2, projections=False)
    with api_client(ledger) as client:
        created = client.post(MODELS, json={"name": "m", "task": "t", "framework": "f"})
        # When a query asks for the position of a stored event
        response = client.get(MODELS, params={"min_position": created.json()["position"]})
        # Then it is 503 problem+json naming min_position, with a Retry-After
        problem = assert_problem(response, 503)
        assert names_the_field(problem, "min_position"), problem
        assert int(response.headers["Retry-After"]) >= 1
    ledger.close()


# -- 7. bad query parameters ---------------------------------------------------------------------

BAD_QUERIES: list[tuple[str, dict[str, Any], str]] = [
    (SEARCH, {"limit": 0}, "limit"),
    (SEARCH, {"limit": 101}, "limit"),
    (MODELS, {"limit": "many"}, "limit"),
    (SEARCH, {"sort": "bogus"}, "sort"),
    (SEARCH, {"order": "up"}, "order"),
    (SEARCH, {"status": "bogus"}, "status"),
    (SEARCH, {"metric": "accuracy", "min_value": "abc"}, "min_value"),
    (SEARCH, {"metric": "accuracy", "max_value": "nan"}, "max_value"),
    (SEARCH, {"min_value": 0.5}, "metric"),
    (SEARCH, {"max_value": 0.5}, "metric"),
    (SEARCH, {"sort": "metric"}, "metric"),
    (MODELS, {"sort": "metric"}, "metric"),
    (SEARCH, {"min_position": -1}, "min_position"),
    (STATISTICS, {"min_position": -1}, "min_position"),
    (TOP, {}, "metric"),
    (TOP, {"metric": "accuracy", "limit": 0}, "limit"),
    (TOP, {"metric": "accuracy", "order": "best"}, "order"),
    (SEARCH, {"q": "?!... --- ***"}, "q"),
    (MODELS, {"q": "!"}, "q"),
    (SEARCH, {"colour": "red"}, "colour"),
    # PostgreSQL text cannot hold NUL: refused as input, not a driver error
    (SEARCH, {"q": "fraud\x00"}, "q"),
    (SEARCH, {"project": "a\x00b"}, "project"),
    (SEARCH, {"task": "a\x00b"}, "task"),
    (SEARCH, {"framework": "a\x00b"}, "framework"),
    (SEARCH, {"owner": "a\x00b"}, "owner"),
    (SEARCH, {"tag": ["ok", "a\x00b"]}, "tag"),
    (SEARCH, {"metric": "a\x00b"}, "metric"),
    (STATISTICS, {"project": "a\x00b"}, "project"),
    (STATISTICS, {"task": "a\x00b"}, "task"),
    (TOP, {"metric": "a\x00b"}, "metric"),
    (TOP, {"metric": "accuracy", "project": "a\x00b"}, "project"),
]


def test_a_bad_query_parameter_is_422_naming_it(catalogue: Catalogue) -> None:
    # Given a catalogue with a trained model
    model_id = catalogue.create("fraud-detector")
    catalogue.train(model_id, accuracy=0.9)
    bad_queries = [
        *BAD_QUERIES,
        (f"{MODELS}/{model_id}/versions", {"min_position": -1}, "min_position"),
        (f"{MODELS}/{model_id}/deployments", {"min_position": "soon"}, "min_position"),
    ]
    for path, params, field in bad_queries:
        # When a query comes with a bad parameter
        response = catalogue.client.get(path, params=params)
        # Then it is refused with 422 problem+json naming that parameter
        assert response.status_code == 422, (path, params, response.text)
        problem = assert_problem(response, 422)
        assert names_the_field(problem, field), (path, params, problem)
