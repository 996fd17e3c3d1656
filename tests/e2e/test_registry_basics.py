"""What an MLflow user reaches for first: a model found by its name, its best metrics
on its own page, and a typo in a query string named rather than ignored."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.problems import MODELS, assert_problem
from tests.e2e.test_access import as_key, issue

BY_NAME = f"{MODELS}/by-name"


def registered(client: TestClient, name: str, project: str, **metrics: float) -> dict[str, Any]:
    """A model, trained once with ``metrics`` when given: the last command's answer."""
    body = {"name": name, "project": project, "task": "classification", "framework": "x"}
    answer = client.post(MODELS, json=body)
    assert answer.status_code == 201, answer.text
    model_id = answer.json()["id"]
    if metrics:
        run = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
        answer = client.post(
            f"{MODELS}/{model_id}/training-runs/{run}/complete", json={"metrics": metrics}
        )
        assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# -- a model by its name ------------------------------------------------------------------------


def test_a_model_is_found_by_its_project_and_name_right_after_it_changed(
    client: TestClient,
) -> None:
    # Given a model named as the Hub names them, trained just now
    trained = registered(client, "acme/sentiment", "nlp", accuracy=0.91)
    # When it is asked for by name, with no position passed
    found = client.get(BY_NAME, params={"project": "nlp", "name": "acme/sentiment"})
    # Then it is that model, at its latest version, as a read by id answers it
    assert found.status_code == 200, found.text
    assert found.json()["id"] == trained["id"]
    assert found.json()["latest_version"] == 1
    assert found.headers["etag"] == f'"{trained["version"]}"'
    by_id = client.get(f"{MODELS}/{trained['id']}")
    assert found.json() == by_id.json()


def test_the_project_defaults_to_default_and_names_are_exact(client: TestClient) -> None:
    registered(client, "churn", "default")
    assert client.get(BY_NAME, params={"name": "churn"}).json()["name"] == "churn"
    # A name that differs in case or spacing is another name
    for other in ("Churn", " churn", "churn "):
        missing = client.get(BY_NAME, params={"name": other})
        problem = assert_problem(missing, 404, "name")
        assert repr(other) in problem["detail"]


def test_a_model_of_a_project_the_key_may_not_see_is_not_found_by_name(
    client: TestClient,
) -> None:
    # Given a model in "alpha" and a key limited to "beta"
    registered(client, "secret", "alpha")
    beta = as_key(client, issue(client, "beta-reader", "viewer", ["beta"]))
    # Then asking for it by name answers as for a name nobody registered
    hidden = beta.get(BY_NAME, params={"project": "alpha", "name": "secret"})
    unknown = beta.get(BY_NAME, params={"project": "alpha", "name": "nobody"})
    assert_problem(hidden, 404, "name")
    assert_problem(unknown, 404, "name")
    assert hidden.json()["title"] == unknown.json()["title"]


def test_search_filters_by_an_exact_name(client: TestClient) -> None:
    registered(client, "fraud", "payments")
    last = registered(client, "fraud-2", "payments")
    page = client.get(MODELS, params={"name": "fraud", "min_position": last["position"]})
    assert [item["name"] for item in page.json()["items"]] == ["fraud"]


# -- best metrics on a model's own page ---------------------------------------------------------


def test_a_model_read_carries_its_best_metrics_as_its_search_row_does(client: TestClient) -> None:
    # Given a model trained twice: accuracy best in version 1, loss (lower is better) in 2
    first = registered(client, "scorer", "payments", accuracy=0.9, loss=0.3)
    run = client.post(f"{MODELS}/{first['id']}/train", json={"dataset": "d"}).json()["run_id"]
    last = client.post(
        f"{MODELS}/{first['id']}/training-runs/{run}/complete",
        json={"metrics": {"accuracy": 0.8, "loss": 0.2}},
    ).json()
    expected = {
        "accuracy": {"value": 0.9, "model_version": 1},
        "loss": {"value": 0.2, "model_version": 2},
    }
    # Then the model now, the model folded from the log and its search row agree
    now = client.get(f"{MODELS}/{first['id']}", params={"min_position": last["position"]})
    folded = client.get(f"{MODELS}/{first['id']}", params={"at_version": last["version"]})
    row = client.get(MODELS, params={"name": "scorer"}).json()["items"][0]
    assert now.json()["best_metrics"] == expected
    assert folded.json()["best_metrics"] == expected
    assert row["best_metrics"] == expected
    # and before version 2 existed, only version 1 was best at anything
    earlier = client.get(f"{MODELS}/{first['id']}", params={"at_version": first["version"]})
    assert earlier.json()["best_metrics"] == {
        "accuracy": {"value": 0.9, "model_version": 1},
        "loss": {"value": 0.3, "model_version": 1},
    }


# -- versions and training runs as resources ---------------------------------------------------


def test_training_runs_are_listed_paged_and_filtered_and_each_read_right_after_it_changed(
    client: TestClient,
) -> None:
    # Given a model with three runs: completed, failed, still running
    model = registered(client, "runs", "payments")
    base = f"{MODELS}/{model['id']}"
    runs = [client.post(f"{base}/train", json={"dataset": f"d{i}"}).json()["run_id"] for i in "123"]
    client.post(f"{base}/training-runs/{runs[0]}/complete", json={"metrics": {"accuracy": 0.9}})
    client.post(f"{base}/training-runs/{runs[1]}/fail", json={"reason": "out of memory"})
    # When they are listed two at a time, with no position passed
    first = client.get(f"{base}/training-runs", params={"limit": 2}).json()
    rest = client.get(f"{base}/training-runs", params={"after": first["next_after"]}).json()
    # Then they come in the order they started, each page saying where to go on
    assert [r["run_id"] for r in first["items"] + rest["items"]] == runs
    assert [r["state"] for r in first["items"]] == ["completed", "failed"]
    assert rest["next_after"] is None
    # and the state filter keeps the running one
    running = client.get(f"{base}/training-runs", params={"state": "running"}).json()["items"]
    assert [r["run_id"] for r in running] == [runs[2]]
    # and a page after a run still goes on when that run has finished since
    page = client.get(f"{base}/training-runs", params={"state": "running", "limit": 1}).json()
    client.post(f"{base}/training-runs/{runs[2]}/fail", json={"reason": "stopped"})
    after = client.get(f"{base}/training-runs", params={"after": page["items"][0]["run_id"]})
    assert after.status_code == 200 and after.json()["items"] == []
    unknown = client.get(f"{base}/training-runs", params={"after": "no-such-run"})
    assert_problem(unknown, 422, "query.after")
    # and one run reads on its own, at the model's version
    one = client.get(f"{base}/training-runs/{runs[1]}")
    assert one.json()["failure_reason"] == "out of memory"
    assert one.json()["state"] == "failed"
    assert one.headers["etag"] == client.get(base).headers["etag"]
    assert_problem(client.get(f"{base}/training-runs/no-such-run"), 404, "run_id")


def test_a_version_reads_on_its_own(client: TestClient) -> None:
    model = registered(client, "versioned", "payments", accuracy=0.91)
    base = f"{MODELS}/{model['id']}"
    version = client.get(f"{base}/versions/1")
    assert version.status_code == 200, version.text
    assert version.json()["metrics"] == {"accuracy": 0.91}
    assert version.json() == client.get(f"{base}/versions").json()["items"][0]
    assert_problem(client.get(f"{base}/versions/2"), 404, "number")


def test_a_version_is_described_and_tagged_and_its_past_kept(client: TestClient) -> None:
    # Given a trained version
    model = registered(client, "annotated", "payments", accuracy=0.91)
    base = f"{MODELS}/{model['id']}"
    # When it is described and tagged, then tagged again
    first = client.patch(f"{base}/versions/1", json={"description": "Shipped", "tags": ["eu"]})
    last = client.patch(f"{base}/versions/1", json={"tags": ["eu", "gold"]})
    assert first.status_code == 200 and last.status_code == 200, last.text
    # Then the version, the model and its versions say so at once
    version = client.get(f"{base}/versions/1").json()
    assert (version["description"], version["tags"]) == ("Shipped", ["eu", "gold"])
    assert version["metrics"] == {"accuracy": 0.91}
    now = client.get(base).json()["versions"][0]
    assert (now["description"], now["tags"]) == ("Shipped", ["eu", "gold"])
    # and the versions are found by their tags (every one asked for)
    tagged = client.get(f"{base}/versions", params={"tag": ["gold", "eu"]}).json()["items"]
    assert [v["number"] for v in tagged] == [1]
    assert client.get(f"{base}/versions", params={"tag": ["gold", "us"]}).json()["items"] == []
    # and the history has each change, and the model as it was before has none
    history = client.get(f"{base}/history").json()["items"]
    updates = [item["data"] for item in history if item["type"] == "VersionUpdated"]
    assert updates == [
        {"model_version": 1, "changes": {"description": "Shipped", "tags": ["eu"]}},
        {"model_version": 1, "changes": {"tags": ["eu", "gold"]}},
    ]
    before = client.get(base, params={"at_version": model["version"]}).json()["versions"][0]
    assert (before["description"], before["tags"]) == ("", [])
    # and a version never trained, or a metric, is refused
    assert_problem(client.patch(f"{base}/versions/2", json={"tags": ["x"]}), 404, "number")
    metric = client.patch(f"{base}/versions/1", json={"metrics": {"accuracy": 1.0}})
    assert_problem(metric, 422, "body.metrics")


def test_search_filters_by_where_a_model_is_served_now_and_then(client: TestClient) -> None:
    # Given one model served in production, then moved to staging, and one never served
    served = registered(client, "served", "payments", accuracy=0.9)
    registered(client, "idle", "payments", accuracy=0.8)
    base = f"{MODELS}/{served['id']}"
    deployed = client.post(f"{base}/deploy", json={"environment": "Production"}).json()
    history = client.get(f"{base}/history").json()["items"]
    then = history[-1]["timestamp"]
    client.post(f"{base}/undeploy", json={"environment": "production"})
    last = client.post(f"{base}/deploy", json={"environment": "staging"}).json()
    assert deployed["version"] < last["version"]

    def served_in(environment: str, **params: Any) -> list[str]:
        asked = {"environment": environment, "min_position": last["position"], **params}
        answer = client.get(MODELS, params=asked)
        assert answer.status_code == 200, answer.text
        return [item["name"] for item in answer.json()["items"]]

    # Then now it serves staging only, compared as deploy stores the environment
    assert served_in("STAGING") == ["served"]
    assert served_in("production") == []
    # and as of the moment it was deployed, production
    assert served_in("production", as_of=then) == ["served"]
    assert served_in("staging", as_of=then) == []
    # and an environment no deploy could name serves nothing
    assert served_in('prod"uction') == [] and served_in("prod uction") == []


def test_facets_count_every_model_the_search_finds_by_each_value(client: TestClient) -> None:
    # Given three models: two pytorch (one tagged gpu, serving production), one sklearn
    for name, framework, tags in (("a", "pytorch", ["gpu", "fraud"]), ("b", "pytorch", ["fraud"])):
        body = {"name": name, "project": "f", "task": "classification", "framework": framework}
        created = client.post(MODELS, json={**body, "tags": tags}).json()
    other = {"name": "c", "project": "f", "task": "regression", "framework": "sklearn"}
    client.post(MODELS, json=other)
    run = client.post(f"{MODELS}/{created['id']}/train", json={"dataset": "d"}).json()["run_id"]
    client.post(f"{MODELS}/{created['id']}/training-runs/{run}/complete", json={"metrics": {}})
    last = client.post(f"{MODELS}/{created['id']}/deploy", json={"environment": "production"})
    # When a search one to a page asks for facets
    asked = {"project": "f", "limit": 1, "min_position": last.json()["position"]}
    answer = client.get(MODELS, params={**asked, "facets": "framework,tags,environment,status"})
    # Then they count every model found, not only the page's, most first
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["items"]) == 1
    assert answer.json()["facets"] == {
        "framework": {"pytorch": 2, "sklearn": 1},
        "tags": {"fraud": 2, "gpu": 1},
        "environment": {"production": 1},
        "status": {"created": 2, "deployed": 1},
    }
    # and as of before the deploy, nothing served anywhere
    history = client.get(f"{MODELS}/{created['id']}/history").json()["items"]
    before = history[-2]["timestamp"]  # (its ModelTrained)
    past = client.get(MODELS, params={**asked, "as_of": before, "facets": "environment,tags"})
    assert past.json()["facets"] == {"environment": {}, "tags": {"fraud": 2, "gpu": 1}}
    # and they follow the filters
    narrowed = client.get(MODELS, params={**asked, "tag": "gpu", "facets": "task"}).json()
    assert narrowed["facets"] == {"task": {"classification": 1}}
    # and without asking there are none; an unknown facet is refused, naming them
    assert "facets" not in client.get(MODELS, params=asked).json()
    assert_problem(client.get(MODELS, params={"facets": "task,colour"}), 422, "query.facets")


# -- a query string holds only what the route takes ---------------------------------------------


def test_every_api_route_names_a_query_parameter_it_does_not_take(
    memory_client: TestClient,
) -> None:
    # Given every operation of the API under /api/v1
    document = memory_client.get("/openapi.json").json()
    operations = [
        (method, path)
        for path, item in document["paths"].items()
        if path.startswith("/api/")
        for method in item
    ]
    assert len(operations) > 25
    for method, path in operations:
        # When it is sent a parameter it does not take (its path filled with any ids)
        url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
        answer = memory_client.request(method.upper(), url, params={"limt": "5"}, json={})
        # Then it is refused, naming the parameter
        assert_problem(answer, 422, "query.limt")


# -- reading the same way everywhere ------------------------------------------------------------


def test_history_is_paged_like_the_feed(client: TestClient) -> None:
    # Given a model with five events
    model = registered(client, "paged", "payments", accuracy=0.9)  # created, started, trained
    for tags in (["a"], ["b"]):
        client.patch(f"{MODELS}/{model['id']}", json={"tags": tags})
    history = f"{MODELS}/{model['id']}/history"
    # When its history is read two events at a time
    pages, after = [], 0
    while after is not None:
        page = client.get(history, params={"after": after, "limit": 2}).json()
        pages.append([item["type"] for item in page["items"]])
        after = page["next_after"]
    # Then the pages hold every event once, in log order, and say when they end
    assert pages == [
        ["ModelCreated", "TrainingStarted"],
        ["ModelTrained", "ModelUpdated"],
        ["ModelUpdated"],
    ]
    whole = client.get(history)
    assert len(whole.json()["items"]) == 5 and whole.json()["next_after"] is None
    assert assert_problem(client.get(history, params={"limit": 1001}), 422, "query.limit")


def test_every_read_takes_the_sessions_position_and_refuses_one_past_the_log(
    memory_client: TestClient,
) -> None:
    # Given a model and a webhook, and the position of the client's last write
    model = registered(memory_client, "session", "payments", accuracy=0.9)
    runs = memory_client.get(f"{MODELS}/{model['id']}/training-runs").json()["items"]
    run_id = runs[0]["run_id"]
    made = memory_client.post("/api/v1/admin/webhooks", json={"url": "https://ci.example/h"})
    assert made.status_code == 201, made.text
    hook, position = made.json()["id"], made.json()["position"]
    document = memory_client.get("/openapi.json").json()
    reads = [
        path
        for path, item in document["paths"].items()
        if path.startswith("/api/") and "get" in item and not path.endswith("/stream")
    ]
    assert len(reads) > 12
    for path in reads:
        url = path.format(
            model_id=model["id"], number=1, run_id=run_id, name="accuracy", webhook_id=hook
        )
        params = {"metric": "accuracy", "name": "session", "project": "payments"}  # (needed)
        parameters = document["paths"][path]["get"].get("parameters", [])
        taken = {p["name"] for p in parameters if p["in"] == "query"}
        asked = {k: v for k, v in params.items() if k in taken}
        # When it is sent with the session's position, then it answers
        answer = memory_client.get(url, params={**asked, "min_position": position})
        assert answer.status_code == 200, f"{path}: {answer.text[:300]}"
        # and a position the log has not reached is refused, naming it
        beyond = memory_client.get(url, params={**asked, "min_position": position + 1000})
        assert_problem(beyond, 422, "min_position")


def test_a_tie_for_the_best_value_goes_to_the_first_version_everywhere(client: TestClient) -> None:
    model = registered(client, "tied", "payments", accuracy=0.9, loss=0.2)
    base = f"{MODELS}/{model['id']}"
    run = client.post(f"{base}/train", json={"dataset": "d"}).json()["run_id"]
    last = client.post(
        f"{base}/training-runs/{run}/complete", json={"metrics": {"accuracy": 0.9, "loss": 0.2}}
    ).json()
    tied = {
        "accuracy": {"value": 0.9, "model_version": 1},
        "loss": {"value": 0.2, "model_version": 1},
    }
    now = client.get(base, params={"min_position": last["position"]}).json()["best_metrics"]
    folded = client.get(base, params={"at_version": last["version"]}).json()["best_metrics"]
    row = client.get(MODELS, params={"name": "tied"}).json()["items"][0]["best_metrics"]
    assert now == folded == row == tied


def test_reads_of_the_past_refuse_a_position_past_the_log_too(client: TestClient) -> None:
    model = registered(client, "past", "payments", accuracy=0.9)
    base, beyond = f"{MODELS}/{model['id']}", model["position"] + 1000
    for asked in ({"at_version": 1}, {"as_of": "2100-01-01T00:00:00Z"}):
        taken = client.get(base, params={**asked, "min_position": model["position"]})
        assert taken.status_code == 200, taken.text
        assert_problem(
            client.get(base, params={**asked, "min_position": beyond}), 422, "min_position"
        )


def test_facets_count_only_what_the_key_may_see(client: TestClient) -> None:
    registered(client, "mine", "alpha")
    last = registered(client, "theirs", "beta")
    alpha = as_key(client, issue(client, "alpha-reader", "viewer", ["alpha"]))
    asked = {"facets": "project", "min_position": last["position"]}
    assert alpha.get(MODELS, params=asked).json()["facets"] == {"project": {"alpha": 1}}
