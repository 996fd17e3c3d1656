"""Fuzz every documented operation from the app's own OpenAPI document (schemathesis).

Each operation gets the document's examples, schemathesis' coverage cases (boundaries,
wrong types, missing and unknown fields, other methods) and a bounded number of random
cases, valid and invalid. Every answer must be no 5xx, and must have a status code, a
content type, headers and a body that the document declares for that operation.

The app runs as tests/conftest.py runs it: a memory ledger, ``create_app(ledger=...)``
in a ``TestClient`` (so through its lifespan). It is seeded with a model in each state,
and generated paths often name those models, so commands and reads get past "not found".
Schemathesis builds each request (``case.as_transport_kwargs``), the TestClient sends it,
and ``case.validate_response`` judges the answer.

``pytest tests/e2e/test_openapi_fuzz.py -p no:xdist -s`` prints the status codes each
operation answered: how far the fuzzing got.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelledger.bootstrap import Ledger
from modelledger.settings import Settings
from modelledger.web import create_app
from projections.worker import PROJECTIONS
from tests.support.auth import TEST_ADMIN_KEY, bearer
from tests.support.fake_hub import FakeHub
from tests.support.ledgers import make_ledger
from write_model.values import model_id_for

MODELS = "/api/v1/models"
KEYS = "/api/v1/admin/keys"
BASE_URL = "http://testserver"  # the TestClient's


def auth_headers() -> dict[str, str]:
    """Sent with every request, seeding included: the key the app asks for (the test
    ledger's admin key, from make_ledger), so the fuzzing reaches past authentication."""
    return bearer(TEST_ADMIN_KEY)


# -- the document under test ------------------------------------------------------------------

# Read at import, to make one test item per operation (this app is never started); the
# fixture checks that the running app serves the very same document.
OPENAPI: dict[str, Any] = create_app(Settings(_env_file=None, database_url="memory://")).openapi()


schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI)).exclude(
    # Server-sent events: at the head of the log the stream waits for new events and
    # never ends, so no request to it returns. Its query is ListEvents, the same as
    # GET /api/v1/events, which is fuzzed.
    path="/api/v1/events/stream",
)
CHECKS: list[CheckFunction] = [
    not_a_server_error,  # no 5xx
    status_code_conformance,  # the status code is documented for the operation
    content_type_conformance,  # ... and the content type, for that status
    response_headers_conformance,  # documented response headers match their schema
    response_schema_conformance,  # the body matches the schema of that status
]
FUZZ = settings(
    # Random cases per operation, besides the examples and coverage cases (the served run,
    # test_openapi_conformance.py, fuzzes every operation again from outside).
    max_examples=20,
    derandomize=True,  # the same cases every run: a failure here is never a fluke
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- real values, so generated requests get past "not found" ----------------------------------

SEEDED = {  # model name -> the state it is left in
    "fuzz-created": "created",
    "fuzz-training": "training",
    "fuzz-trained": "trained",
    "fuzz-deployed": "deployed",
    "fuzz-failed": "failed",
    "fuzz-archived": "archived",
}
MODEL_IDS = [str(model_id_for("default", name)) for name in SEEDED]  # derived, so stable
RUNS: list[tuple[str, str]] = []  # (model_id, run_id) of the runs started: seeded, then learned
KEY_IDS: list[str] = []  # the API keys issued: seeded, then learned
PROJECTION_NAMES = [projection.name for projection in PROJECTIONS]


def real_path_values(
    ctx: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Each parameter: the generated value, or one of the real ones; a run's path, often
    a run of that very model (so the command gets as far as the run's state)."""
    if not path_parameters:
        return st.just(path_parameters)
    real = {
        "model_id": MODEL_IDS,
        "run_id": [run_id for _, run_id in RUNS],
        "key_id": KEY_IDS,
        "name": PROJECTION_NAMES,  # rebuild
    }
    each: st.SearchStrategy[dict[str, Any] | None] = st.fixed_dictionaries(
        {
            name: st.sampled_from([value, *real.get(name, [])])
            for name, value in path_parameters.items()
        }
    )
    if "run_id" not in path_parameters or not RUNS:
        return each
    paired = st.sampled_from(RUNS).map(
        lambda run: {**path_parameters, "model_id": run[0], "run_id": run[1]}
    )
    return each | paired


def real_query_values(
    ctx: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """The feeds filter by model: often by a real one."""
    if not query or "model_id" not in query:
        return st.just(query)
    return st.sampled_from([query["model_id"], *MODEL_IDS]).map(
        lambda model_id: {**query, "model_id": model_id}
    )


schema.hooks.hook("flatmap_path_parameters")(real_path_values)
schema.hooks.hook("flatmap_query")(real_query_values)


# -- the running app ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    client: TestClient
    ledger: Ledger


def _ok(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def seed(client: TestClient) -> None:
    """One model in each state: created, training, trained, deployed, failed, archived."""
    headers = auth_headers()
    RUNS.clear()
    KEY_IDS.clear()
    for name, state in SEEDED.items():
        body = {"name": name, "task": "classification", "framework": "pytorch", "tags": ["fuzz"]}
        model_id = _ok(client.post(MODELS, json=body, headers=headers), 201)["id"]
        if state in ("training", "trained", "deployed", "failed"):
            train = {"dataset": "s3://data/train"}
            run_id = _ok(
                client.post(f"{MODELS}/{model_id}/train", json=train, headers=headers), 202
            )["run_id"]
            RUNS.append((model_id, run_id))
            run = f"{MODELS}/{model_id}/training-runs/{run_id}"
            if state == "failed":
                _ok(client.post(f"{run}/fail", json={"reason": "oom"}, headers=headers), 200)
            elif state != "training":
                metrics = {"metrics": {"accuracy": 0.9, "loss": 0.2}}
                _ok(client.post(f"{run}/complete", json=metrics, headers=headers), 200)
        if state == "deployed":
            deploy = {"environment": "production"}
            _ok(client.post(f"{MODELS}/{model_id}/deploy", json=deploy, headers=headers), 200)
        if state == "archived":
            _ok(client.delete(f"{MODELS}/{model_id}", headers=headers), 200)
    key = {"name": "fuzz-viewer", "role": "viewer"}
    KEY_IDS.append(_ok(client.post(KEYS, json=key, headers=headers), 201)["id"])


def learn(case: Case[Any], response: httpx.Response) -> None:
    """Runs started and keys issued by the fuzzing become real values for later cases."""
    if response.status_code not in (201, 202):
        return
    body = response.json()
    if case.operation.path == f"{MODELS}/{{model_id}}/train":
        RUNS.append((body["id"], body["run_id"]))
    elif case.operation.path == KEYS:
        KEY_IDS.append(body["id"])


ANSWERED: dict[str, Counter[int]] = {}  # operation -> status code -> how often


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with FakeHub() as hub:  # imports ask a local Hub (one model there), never the internet
        hub.add_model("acme/sentiment")
        yield from _live(make_ledger("memory://", hf_endpoint=hub.url))


def _live(ledger: Ledger) -> Iterator[Live]:
    app = create_app(ledger=ledger)
    # A crash answers 500 problem+json (errors.py), judged like any answer, not raised.
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        served = client.get("/openapi.json", headers=auth_headers())
        assert served.json() == OPENAPI, "the app serves another document than the one fuzzed"
        seed(client)
        yield Live(client, ledger)
    ledger.close()
    for label, statuses in sorted(ANSWERED.items()):
        print(f"{label}: {dict(sorted(statuses.items()))}")


def send(client: TestClient, case: Case[Any]) -> httpx.Response:
    """The request schemathesis built for ``case``, sent with the TestClient."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=auth_headers())
    if "json" in kwargs:  # encoded as requests would (httpx refuses NaN, requests sends it)
        kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
    if isinstance(kwargs.get("data"), str | bytes):
        kwargs["content"] = kwargs.pop("data")
    assert not kwargs.pop("cookies", None), "no operation takes a cookie"
    response: httpx.Response = client.request(**kwargs)
    return response


@schema.parametrize()
@FUZZ
def test_openapi_fuzz(case: Case[Any], live: Live) -> None:
    response = send(live.client, case)
    ANSWERED.setdefault(case.operation.label, Counter())[response.status_code] += 1
    learn(case, response)
    case.validate_response(response, checks=CHECKS, headers=auth_headers())
