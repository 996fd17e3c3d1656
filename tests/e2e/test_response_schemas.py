"""Every answer has a schema, and every body matches it exactly.

Given a registry with models in every state (created, trained with metrics, a failed run,
deployed, rolled back, undeployed, archived, a deployment a provider still carries out)
and an API key issued and revoked, every JSON route is read (now, as of past times, and
with empty results) and each body is validated against the schema the app's OpenAPI
document declares for that operation and status, closed: an object may hold no property
the schema does not name, so the document says all a body holds (the served document
stays open, for fields to grow). The command answers met on the way are checked too.

The routes send their readers' encoded bytes as they are; the schemas are what documents
them, so nothing but tests like this one keeps the two in step.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from tests.support.auth import api_client
from tests.support.documented import openapi_document
from tests.support.fake_hub import FakeHub
from tests.support.ledgers import make_ledger
from tests.support.processes import ApiProcess, free_port

DOCUMENT = openapi_document()
MODELS = "/api/v1/models"
MODEL = "/api/v1/models/{model_id}"
KEYS = "/api/v1/admin/keys"
HUB_MODEL = "acme/sentiment"
JSON = "application/json"


def closed(schema: Any) -> Any:
    """The schema with every object that names its properties closed to any other."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    shut = {key: closed(value) for key, value in schema.items()}
    if "properties" in shut and "additionalProperties" not in shut:
        shut["additionalProperties"] = False
    return shut


COMPONENTS = closed(copy.deepcopy(DOCUMENT["components"]))


def validator(schema: dict[str, Any]) -> Any:
    """A validator of ``schema``, whose refs point into the document's components."""
    return jsonschema_rs.validator_for(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", **closed(schema)}
        | {"components": COMPONENTS},
        validate_formats=True,
    )


def declared(path: str, method: str, status: int) -> dict[str, Any]:
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not declare {status}"
    content = responses[str(status)].get("content", {})
    assert JSON in content, f"{method.upper()} {path} {status} declares no JSON body"
    schema: dict[str, Any] = content[JSON]["schema"]
    return schema


def check(response: httpx.Response, path: str, method: str = "get", status: int = 200) -> Any:
    """The body, once it matches the schema declared for the operation and status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON)
    body = response.json()
    errors = [
        f"{error.instance_path}: {error.message}"
        for error in validator(declared(path, method, status)).iter_errors(body)
    ]
    assert not errors, f"{method.upper()} {path}:\n" + "\n".join(errors[:20])
    return body


def a_moment() -> str:
    """A time strictly between what came before and what comes after."""
    time.sleep(0.002)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.002)
    return moment


# -- the registry --------------------------------------------------------------------------


@dataclass
class Registry:
    client: TestClient
    ids: dict[str, str] = field(default_factory=dict)
    moments: dict[str, str] = field(default_factory=lambda: {"never": "2000-01-01T00:00:00Z"})
    position: int = 0

    def send(self, method: str, path: str, status: int, body: Any = None, **ids: str) -> Any:
        response = self.client.request(method, path.format(**ids), json=body)
        answer = check(response, path, method.lower(), status)
        self.position = max(self.position, answer.get("position") or 0)
        return answer

    def create(self, name: str, **fields: Any) -> str:
        body = {"name": name, "task": "classification", "framework": "pytorch", **fields}
        self.ids[name] = self.send("POST", MODELS, 201, body)["id"]
        return self.ids[name]

    def train(self, name: str, metrics: dict[str, float] | None) -> None:
        model_id = self.ids[name]
        train = {"dataset": "s3://data/train", "hyperparameters": {"lr": 0.01}}
        run = self.send("POST", f"{MODEL}/train", 202, train, model_id=model_id)["run_id"]
        finish = f"{MODEL}/training-runs/{{run_id}}/" + ("complete" if metrics else "fail")
        outcome = {"metrics": metrics, "artifact_uri": "s3://m/1"} if metrics else {"reason": "oom"}
        self.send("POST", finish, 200, outcome, model_id=model_id, run_id=run)

    def to(self, name: str, action: str, status: int = 200, **body: Any) -> None:
        self.send("POST", f"{MODEL}/{action}", status, body, model_id=self.ids[name])


def seed(registry: Registry) -> None:
    r = registry
    r.create("spam-filter", project="mail", description="Flags spam", tags=["text"])
    r.create("fraud-detector", project="payments", description="Flags card fraud")
    r.train("fraud-detector", {"accuracy": 0.91, "loss": 0.3})
    r.train("fraud-detector", None)  # a failed run
    r.create("churn-model", project="payments", tags=["tabular"], configuration={"k": [1]})
    r.train("churn-model", {"accuracy": 0.8, "loss": 0.5})
    r.to("churn-model", "deploy", environment="production", endpoint_url="https://m.example/1")
    r.train("churn-model", {"accuracy": 0.95, "loss": 0.1, "f1": 1})
    r.to("churn-model", "deploy", environment="production")
    r.to("churn-model", "deploy", environment="staging", model_version=1)
    r.moments["deployed"] = a_moment()
    r.to("churn-model", "rollback", environment="production")
    r.to("churn-model", "undeploy", environment="staging")
    r.create("old-model", project="payments")
    r.train("old-model", {"accuracy": 0.5})
    r.send("DELETE", MODEL, 200, model_id=r.ids["old-model"])
    imported = r.send("POST", f"{MODELS}/import/huggingface", 201, {"repo_id": HUB_MODEL})
    r.ids["hub-model"] = imported["id"]
    r.to("hub-model", "deploy", 202, environment="production", target="huggingface")
    key = r.send("POST", KEYS, 201, {"name": "ci-bot", "role": "viewer"})
    r.send("DELETE", f"{KEYS}/{{key_id}}", 200, key_id=key["id"])
    r.moments["end"] = a_moment()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    store = Path(tmp_path_factory.mktemp("schemas")) / "ledger.sqlite"
    with FakeHub() as hub:
        hub.add_model(HUB_MODEL)
        ledger = make_ledger(
            f"sqlite:///{store}",
            hf_endpoint=hub.url,
            hf_endpoints_url=hub.endpoints_url,
            hf_token=hub.token,
        )
        with api_client(ledger) as client:
            seeded = Registry(client)
            seed(seeded)
            yield seeded
        ledger.close()


# -- every read ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    path: str
    model: str | None = None  # the model named in the path
    query: tuple[tuple[str, Any], ...] = ()  # "@name" values are the registry's moments

    @property
    def label(self) -> str:
        named = f"{self.path}({self.model})" if self.model else self.path
        asked = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{named}?{asked}" if asked else named


def read(path: str, model: str | None = None, **query: Any) -> Read:
    return Read(path, model, tuple(query.items()))


SEARCH, STATISTICS, TOP = f"{MODELS}/search", f"{MODELS}/statistics", f"{MODELS}/top-performing"
EVENTS, DEPLOYMENTS = "/api/v1/events", "/api/v1/deployments"
READS = [
    read(MODELS),
    read(MODELS, limit=1),
    read(SEARCH, q="fraud"),
    read(SEARCH, q="nothing-like-it"),
    read(SEARCH, status="archived"),
    read(SEARCH, sort="metric", metric="accuracy"),
    read(SEARCH, sort="metric", metric="loss", limit=1),
    read(SEARCH, metric="accuracy", min_value=0.9, tag="tabular"),
    read(SEARCH, as_of="@deployed"),
    read(SEARCH, as_of="@deployed", sort="metric", metric="loss"),
    read(SEARCH, as_of="@never"),
    read(STATISTICS),
    read(STATISTICS, project="payments", task="classification"),
    read(STATISTICS, project="nowhere"),
    read(STATISTICS, as_of="@deployed"),
    read(STATISTICS, as_of="@never"),
    read(TOP, metric="accuracy"),
    read(TOP, metric="loss", project="payments"),
    read(TOP, metric="accuracy", as_of="@deployed"),
    read(TOP, metric="unheard-of"),
    *(read(MODEL, name) for name in ("spam-filter", "fraud-detector", "churn-model")),
    *(read(MODEL, name) for name in ("old-model", "hub-model")),
    read(MODEL, "churn-model", at_version=4),
    read(MODEL, "churn-model", as_of="@deployed"),
    read(MODEL, "hub-model", as_of="@end"),
    read(f"{MODEL}/history", "churn-model"),
    read(f"{MODEL}/history", "hub-model"),
    read(f"{MODEL}/versions", "churn-model"),
    read(f"{MODEL}/versions", "spam-filter"),
    read(f"{MODEL}/deployments", "churn-model"),
    read(f"{MODEL}/deployments", "churn-model", as_of="@deployed"),
    read(f"{MODEL}/deployments", "churn-model", as_of="@never"),
    read(f"{MODEL}/deployments", "spam-filter"),
    read(DEPLOYMENTS),
    read(DEPLOYMENTS, as_of="@deployed", limit=1),
    read(DEPLOYMENTS, environment="staging"),
    read(EVENTS),
    read(EVENTS, limit=3),
    read(EVENTS, type="KeyRevoked"),
    read(EVENTS, after=10**9),
    read(KEYS),
    read(KEYS, include_revoked=True),
    read("/api/v1/admin/projections"),
    read("/health"),
    read("/health/detailed"),
    read("/api/info"),
]


def takes(path: str, parameter: str) -> bool:
    found = DOCUMENT["paths"][path]["get"].get("parameters", [])
    return any(p["name"] == parameter and p["in"] == "query" for p in found)


@pytest.mark.parametrize("asked", READS, ids=[asked.label for asked in READS])
def test_every_body_matches_the_schema_its_operation_declares(
    registry: Registry, asked: Read
) -> None:
    # Given the registry, when a route is read (once the tables hold every command)
    query = {k: registry.moments[v[1:]] if str(v).startswith("@") else v for k, v in asked.query}
    if takes(asked.path, "min_position"):
        query["min_position"] = registry.position
    path = asked.path.format(model_id=registry.ids.get(asked.model or ""))
    # Then its body matches the schema declared for it, exactly
    check(registry.client.get(path, params=query), asked.path)


def test_a_rebuild_request_matches_its_schema(registry: Registry) -> None:
    rebuild = "/api/v1/admin/projections/{name}/rebuild"
    registry.send("POST", rebuild, 202, name="keys")


def test_a_dependency_that_is_down_is_described_too() -> None:
    # Given a registry whose Kafka cannot be reached
    ledger = make_ledger("memory://", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    with api_client(ledger) as client:
        # Then the detailed health says so, as its schema does
        body = check(client.get("/health/detailed"), "/health/detailed")
    ledger.close()
    assert body["kafka"]["status"] == "down"


# -- every operation declares its body --------------------------------------------------------


def resolved(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = DOCUMENT["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def describes(schema: dict[str, Any]) -> bool:
    """An object with named properties, a list of them, or a choice between them."""
    schema = resolved(schema)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return all(describes(branch) for branch in branches)
    if schema.get("type") == "array":
        return describes(schema.get("items", {}))
    return bool(schema.get("properties"))


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield path, method, operation


def test_every_operation_declares_the_body_of_each_success() -> None:
    undescribed = []
    for path, method, operation in operations():
        answers = {s: a for s, a in operation["responses"].items() if s.startswith("2")}
        assert answers, f"{method.upper()} {path} declares no success"
        for status, answer in answers.items():
            content = answer.get("content", {})
            where = f"{method.upper()} {path} {status}"
            if JSON in content and not describes(content[JSON].get("schema", {})):
                undescribed.append(f"{where}: {content[JSON].get('schema')}")
            stream = content.get("text/event-stream")
            if stream is not None and "contentSchema" not in json.dumps(stream):
                undescribed.append(f"{where}: the events' data")
            if not content:
                undescribed.append(f"{where}: no body")
    assert not undescribed, "\n".join(undescribed)


def test_the_response_schemas_examples_match_them() -> None:
    for name, schema in DOCUMENT["components"]["schemas"].items():
        for example in schema.get("examples", []) if name.endswith("Response") else []:
            errors = [e.message for e in validator(schema).iter_errors(example)]
            assert not errors, f"{name}'s example: {errors}"


# -- the stream ---------------------------------------------------------------------------------


def streamed(lines: Iterator[str]) -> dict[str, str]:
    """The next server-sent event's fields (comments are keep-alive pings)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line and fields:
            return fields
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended")


@pytest.mark.slow
def test_each_streamed_event_holds_what_the_stream_declares(served: ApiProcess) -> None:
    stream = "/api/v1/events/stream"
    declared_event = DOCUMENT["paths"][stream]["get"]["responses"]["200"]["content"][
        "text/event-stream"
    ]["itemSchema"]
    data = validator(declared_event["properties"]["data"]["contentSchema"])
    with served.client() as http:
        # Given a model's event and a key's
        created = http.post(MODELS, json={"name": "streamed", "task": "t", "framework": "f"})
        issued = http.post(KEYS, json={"name": "streamed-key", "role": "viewer"})
        assert created.status_code == issued.status_code == 201
        for query in ({"model_id": created.json()["id"]}, {"type": "KeyIssued"}):
            # When each is streamed
            with http.stream("GET", stream, params=query) as events:
                fields = streamed(events.iter_lines())
            # Then it has the declared fields, and its data is an item of the feed
            assert validator(declared_event).is_valid(fields), fields
            item = json.loads(fields["data"])
            assert not list(data.iter_errors(item)), list(data.iter_errors(item))
            assert (fields["event"], fields["id"]) == (item["type"], str(item["position"]))
