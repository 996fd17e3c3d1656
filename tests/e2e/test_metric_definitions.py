"""Metric definitions: a team says which way a metric is better, and every ranking reads
it that way at once: the leaderboard, best_metrics, sort=<metric> and statistics' best,
now and as of any moment (with the definitions of that moment)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e.problems import MODELS, assert_problem
from tests.e2e.test_access import as_key, issue
from tests.e2e.test_registry_basics import registered
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger

DEFINITIONS = "/api/v1/metric-definitions"


def define(client: TestClient, name: str, **body: Any) -> dict[str, Any]:
    answer = client.put(f"{DEFINITIONS}/{name}", json=body)
    assert answer.status_code in (200, 201), answer.text
    result: dict[str, Any] = answer.json()
    return result


def leaderboard(client: TestClient, metric: str, position: int, **params: Any) -> list[str]:
    board = client.get(
        f"{MODELS}/top-performing", params={"metric": metric, "min_position": position, **params}
    )
    assert board.status_code == 200, board.text
    return [item["name"] for item in board.json()["items"]]


def test_latency_in_ms_is_minimised_by_default_and_a_declaration_turns_it_round(
    client: TestClient,
) -> None:
    # Given two models whose latency_ms the old suffix rule read as "higher is better"
    registered(client, "fast", "p", latency_ms=12.0)
    slow = registered(client, "slow", "p", latency_ms=40.0)
    # Then by default the faster leads (the name part "latency" means minimise)
    assert leaderboard(client, "latency_ms", slow["position"]) == ["fast", "slow"]
    # When a team declares it the other way (say, it is a budget they want used)
    declared = define(client, "latency_ms", direction="maximize", unit="ms")
    assert declared["source"] == "declared" and declared["direction"] == "maximize"
    # Then the leaderboard, sort=metric, best_metrics and statistics all read it so
    at = declared["position"]
    assert leaderboard(client, "latency_ms", at) == ["slow", "fast"]
    sorted_by = {"project": "p", "sort": "metric", "metric": "latency_ms", "min_position": at}
    page = client.get(MODELS, params=sorted_by)
    assert [item["name"] for item in page.json()["items"]] == ["slow", "fast"]
    stats = client.get(f"{MODELS}/statistics", params={"min_position": at}).json()
    assert stats["metrics"]["latency_ms"]["direction"] == "maximize"
    assert stats["metrics"]["latency_ms"]["best"] == 40.0
    model = client.get(f"{MODELS}/{slow['id']}", params={"min_position": at}).json()
    assert model["best_metrics"]["latency_ms"] == {"value": 40.0, "model_version": 1}


def test_a_model_read_without_a_position_ranks_with_a_new_definition_soon_after(
    client: TestClient,
) -> None:
    # Given a model with two versions, its best loss the second's, read (and so kept)
    model = registered(client, "m", "p", loss=0.5)
    url = f"{MODELS}/{model['id']}"
    run = client.post(f"{url}/train", json={"dataset": "d"}).json()["run_id"]
    client.post(f"{url}/training-runs/{run}/complete", json={"metrics": {"loss": 0.2}})
    assert client.get(url).json()["best_metrics"]["loss"] == {"value": 0.2, "model_version": 2}
    # When loss is declared higher-is-better (nobody's choice, but it proves the point)
    define(client, "loss", direction="maximize")
    # Then a plain read of the model (kept answers included) soon ranks it that way
    deadline = time.monotonic() + 5
    while client.get(url).json()["best_metrics"]["loss"]["model_version"] != 1:
        assert time.monotonic() < deadline, "the kept answer never ranked with the definition"
        time.sleep(0.05)


def test_the_list_has_every_metric_seen_or_declared_with_its_source_and_count(
    client: TestClient,
) -> None:
    # Given versions reporting accuracy (twice) and cost_usd, and a declared metric no one uses
    registered(client, "a", "p", accuracy=0.9, cost_usd=3.0)
    registered(client, "b", "p", accuracy=0.8)
    last = define(client, "eval/loss", direction="minimize", description="held-out loss")
    # When the definitions are listed
    listed = client.get(DEFINITIONS, params={"min_position": last["position"]})
    assert listed.status_code == 200, listed.text
    items = {item["name"]: item for item in listed.json()["items"]}
    # Then each metric says how it is read, and whether declared or by its name's default
    assert list(items) == sorted(items) == ["accuracy", "cost_usd", "eval/loss"]
    assert items["accuracy"] | {"changed_at": None} == {
        "name": "accuracy",
        "direction": "maximize",
        "source": "default",
        "unit": None,
        "description": None,
        "versions": 2,
        "changed_at": None,
        "changed_by": None,
    }
    assert (items["cost_usd"]["direction"], items["cost_usd"]["versions"]) == ("minimize", 1)
    assert items["eval/loss"]["source"] == "declared"
    assert items["eval/loss"]["description"] == "held-out loss"
    assert items["eval/loss"]["changed_by"] == "admin"
    assert items["eval/loss"]["versions"] == 0
    # and one metric is read by its name, slashes, at-signs and all
    one = client.get(f"{DEFINITIONS}/eval/loss", params={"min_position": last["position"]})
    assert one.json() == items["eval/loss"]
    unseen = client.get(f"{DEFINITIONS}/accuracy@squad").json()
    assert (unseen["source"], unseen["direction"], unseen["versions"]) == ("default", "maximize", 0)


def test_delete_returns_a_metric_to_its_default_and_a_second_delete_is_not_found(
    client: TestClient,
) -> None:
    registered(client, "a", "p", fpr=0.1)
    other = registered(client, "b", "p", fpr=0.3)
    assert leaderboard(client, "fpr", other["position"]) == ["a", "b"]  # fpr: minimise
    define(client, "fpr", direction="maximize")
    removed = client.delete(f"{DEFINITIONS}/fpr")
    assert removed.status_code == 200, removed.text
    assert (removed.json()["source"], removed.json()["direction"]) == ("default", "minimize")
    assert leaderboard(client, "fpr", removed.json()["position"]) == ["a", "b"]
    again = client.delete(f"{DEFINITIONS}/fpr")
    problem = assert_problem(again, 404, "name")
    assert "default" in problem["detail"]
    # and declaring it once more makes it again: 201
    declared_again = client.put(f"{DEFINITIONS}/fpr", json={"direction": "maximize"})
    assert declared_again.status_code == 201, declared_again.text


def test_the_same_declaration_twice_records_one_event(client: TestClient) -> None:
    created = client.put(f"{DEFINITIONS}/bleu@wmt", json={"direction": "maximize"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{DEFINITIONS}/bleu%40wmt"
    read_back = client.get(
        created.headers["location"], params={"min_position": created.json()["position"]}
    )
    assert read_back.json()["source"] == "declared"
    first = define(client, "bleu", direction="maximize", unit="points")
    second = define(client, "bleu", direction="maximize", unit="points")
    assert (second["version"], second["position"]) == (first["version"], first["position"])
    changed = define(client, "bleu", direction="maximize")  # the unit left out: removed
    assert changed["version"] == first["version"] + 1
    assert changed["unit"] is None
    feed = client.get("/api/v1/events", params={"type": ["MetricDefined", "MetricRedefined"]})
    kinds = [(item["type"], item["metric"]) for item in feed.json()["items"]]
    assert kinds == [
        ("MetricDefined", "bleu@wmt"),
        ("MetricDefined", "bleu"),
        ("MetricRedefined", "bleu"),
    ]


def test_as_of_reads_rank_with_the_definitions_in_force_then(client: TestClient) -> None:
    # Given two models' error counts, ranked by default (error: minimise)
    registered(client, "few", "p", error_count=1.0)
    registered(client, "many", "p", error_count=9.0)
    time.sleep(0.01)
    moment = now_text()
    time.sleep(0.01)
    # When the metric is declared the other way
    declared = define(client, "error_count", direction="maximize")
    # Then as of the moment before, the default still ranks it; now, the declaration does
    past = client.get(
        f"{MODELS}/top-performing",
        params={"metric": "error_count", "as_of": moment, "min_position": declared["position"]},
    ).json()
    assert (past["direction"], [i["name"] for i in past["items"]]) == ("minimize", ["few", "many"])
    assert leaderboard(client, "error_count", declared["position"]) == ["many", "few"]
    stats = client.get(
        f"{MODELS}/statistics", params={"as_of": moment, "min_position": declared["position"]}
    ).json()
    assert stats["metrics"]["error_count"]["best"] == 1.0


def test_only_an_admin_declares_and_a_bad_declaration_names_its_field(
    client: TestClient,
) -> None:
    editor = as_key(client, issue(client, "ed", "editor"))
    refused = editor.put(f"{DEFINITIONS}/loss", json={"direction": "maximize"})
    assert_problem(refused, 403)
    assert editor.get(f"{DEFINITIONS}/loss").status_code == 200
    down = client.put(f"{DEFINITIONS}/loss", json={"direction": "down"})
    assert_problem(down, 422, "body.direction")
    assert_problem(client.put(f"{DEFINITIONS}/loss", json={}), 422, "body.direction")
    too_long = client.put(f"{DEFINITIONS}/{'x' * 101}", json={"direction": "minimize"})
    assert_problem(too_long, 422, "path.name")
    assert_problem(
        client.put(f"{DEFINITIONS}/loss", json={"direction": "minimize", "unit": "m\ns"}),
        422,
        "body.unit",
    )
    assert_problem(client.get(DEFINITIONS, params={"limt": 5}), 422, "query.limt")


# -- re-ranking, now and as of every moment, for any story ----------------------------------

VALUES = st.sampled_from([0.1, 0.2, 0.5, 0.9])  # few, so ties happen
Change = tuple[str, str | None]  # ("define", direction) or ("remove", None)
CHANGES = st.lists(
    st.tuples(st.just("define"), st.sampled_from(["minimize", "maximize"]))
    | st.tuples(st.just("remove"), st.none()),
    min_size=1,
    max_size=4,
)


def expected_board(
    versions: dict[str, list[float]], direction: str
) -> list[tuple[str, float, int]]:
    """(name, best value, first version reaching it), best first; ties by name."""
    lower = direction == "minimize"
    best = {}
    for name, values in versions.items():
        value = min(values) if lower else max(values)
        best[name] = (name, value, values.index(value) + 1)
    return sorted(best.values(), key=lambda b: (b[1] if lower else -b[1], b[0]))


def board_as(client: TestClient, metric: str, position: int, **params: Any) -> dict[str, Any]:
    answer = client.get(
        f"{MODELS}/top-performing",
        params={"metric": metric, "min_position": position, "limit": 100, **params},
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_any_sequence_of_definitions_re_ranks_at_once_and_as_of_each_moment() -> None:
    ledger = make_ledger("memory://", rate_limit=0)  # (a story sends many requests at once)
    with api_client(ledger) as client:
        run_stories(client)
    ledger.close()


def run_stories(client: TestClient) -> None:
    stories = iter(range(10_000))

    @settings(max_examples=15, deadline=None)
    @given(
        models=st.lists(st.lists(VALUES, min_size=1, max_size=3), min_size=2, max_size=4),
        suffix=st.sampled_from(["loss", "score"]),
        changes=CHANGES,
    )
    def story(models: list[list[float]], suffix: str, changes: list[Change]) -> None:
        # Given models of their own project, each with versions reporting a metric of its own
        number = next(stories)
        project, metric = f"story{number}", f"h{number}_{suffix}"
        versions = {f"m{i}": values for i, values in enumerate(models)}
        position = 0
        for name, values in versions.items():
            model = registered(client, name, project, **{metric: values[0]})
            for value in values[1:]:
                position = train_again(client, model["id"], {metric: value})
            position = max(position, model["position"])
        direction = "minimize" if suffix == "loss" else "maximize"
        default, seen = direction, [(now_text(), direction)]
        # When its definition changes, step by step
        for kind, wanted in changes:
            time.sleep(0.002)
            url = f"{DEFINITIONS}/{metric}"
            answer = (
                client.put(url, json={"direction": wanted})
                if kind == "define"
                else (client.delete(url))
            )
            if kind == "remove" and direction == default and answer.status_code == 404:
                continue  # (nothing declared, or already removed: nothing to take back)
            assert answer.status_code in (200, 201), answer.text
            direction, position = answer.json()["direction"], answer.json()["position"]
            assert direction == (wanted or default)
            # Then at once (at the change's position) the leaderboard ranks by it
            board = board_as(client, metric, position, project=project)
            got = [(i["name"], i["value"], i["model_version"]) for i in board["items"]]
            assert (board["direction"], got) == (direction, expected_board(versions, direction))
            time.sleep(0.002)
            seen.append((now_text(), direction))
        # and as of each moment, it ranks as the definition in force then did: the
        # leaderboard, and each model's best as search and its own page show it
        for moment, then in seen:
            board = board_as(client, metric, position, project=project, as_of=moment)
            got = [(i["name"], i["value"], i["model_version"]) for i in board["items"]]
            expected = expected_board(versions, then)
            assert (board["direction"], got) == (then, expected), moment
            best = {name: {"value": v, "model_version": n} for name, v, n in expected}
            asked: dict[str, str | int] = {
                "project": project,
                "as_of": moment,
                "min_position": position,
            }
            for row in client.get(MODELS, params=asked).json()["items"]:
                assert row["best_metrics"][metric] == best[row["name"]], moment
                page = client.get(f"{MODELS}/{row['id']}", params={"as_of": moment}).json()
                assert page["best_metrics"][metric] == best[row["name"]], moment

    story()


def train_again(client: TestClient, model_id: str, metrics: dict[str, float]) -> int:
    url = f"{MODELS}/{model_id}"
    run = client.post(f"{url}/train", json={"dataset": "d"}).json()["run_id"]
    done = client.post(f"{url}/training-runs/{run}/complete", json={"metrics": metrics})
    assert done.status_code == 200, done.text
    position: int = done.json()["position"]
    return position


def now_text() -> str:
    return datetime.now(UTC).isoformat()


def test_a_page_cursor_from_before_a_redefinition_is_refused_not_misread(
    client: TestClient,
) -> None:
    # Given three models paged by their best cost, best (lowest) first
    for name, cost in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        last = registered(client, name, "p", cost=cost)
    by_cost: dict[str, str | int] = {"sort": "metric", "metric": "cost", "order": "asc", "limit": 2}
    first = client.get(MODELS, params={**by_cost, "min_position": last["position"]}).json()
    assert [item["name"] for item in first["items"]] == ["a", "b"]
    # When cost is declared higher-is-better (the rows then compare their highest cost)
    declared = define(client, "cost", direction="maximize")
    # Then the next page of the old question is refused, naming the cursor
    stale = {**by_cost, "cursor": first["next_cursor"], "min_position": declared["position"]}
    assert_problem(client.get(MODELS, params=stale), 422, "cursor")


def test_a_model_at_a_version_ranks_as_a_read_of_it_now(client: TestClient) -> None:
    model = registered(client, "m", "p", wer=0.3)
    url = f"{MODELS}/{model['id']}"
    position = train_again(client, model["id"], {"wer": 0.1})
    declared = define(client, "wer", direction="maximize")
    now = client.get(url, params={"min_position": declared["position"]}).json()
    at_version = client.get(url, params={"at_version": now["version"]}).json()
    assert now["best_metrics"] == at_version["best_metrics"]
    assert now["best_metrics"]["wer"] == {"value": 0.3, "model_version": 1}
    assert position < declared["position"]
