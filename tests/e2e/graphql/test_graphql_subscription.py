"""``modelEvents`` over graphql-transport-ws, on SQLite and PostgreSQL: the key comes in
connection_init, events arrive in log order, a new subscription resumes after the last
position it saw, and the stream ends when its key is revoked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.support.auth import TEST_ADMIN_KEY

MODELS = "/api/v1/models"
PROTOCOL = "graphql-transport-ws"
EVENTS = """subscription($after: Int!, $types: [String!]) {
  modelEvents(after: $after, types: $types) { position type modelId actor }
}"""


@contextmanager
def opened(client: TestClient, key: str | None) -> Iterator[WebSocketTestSession]:
    with client.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as socket:
        payload = {} if key is None else {"Authorization": f"Bearer {key}"}
        socket.send_json({"type": "connection_init", "payload": payload})
        yield socket


def subscribe(socket: WebSocketTestSession, after: int, **variables: Any) -> None:
    socket.send_json(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": EVENTS, "variables": {"after": after, **variables}},
        }
    )


def events(socket: WebSocketTestSession, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        message = socket.receive_json()
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        found.append(message["payload"]["data"]["modelEvents"])
    return found


def create(client: TestClient, name: str) -> dict[str, Any]:
    body = {"name": name, "task": "classification", "framework": "jax"}
    created = client.post(MODELS, json=body)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


def test_the_log_streams_in_order_and_resumes_after_a_position(client: TestClient) -> None:
    # Given two models created before anyone listens
    first, second = create(client, "one"), create(client, "two")
    with opened(client, TEST_ADMIN_KEY) as socket:
        assert socket.receive_json()["type"] == "connection_ack"
        # When a subscription starts from the beginning, then what was stored comes first
        subscribe(socket, 0, types=["ModelCreated", "ModelUpdated"])
        seen = events(socket, 2)
        assert [e["modelId"] for e in seen] == [first["id"], second["id"]]
        # And what is stored later follows, live, in order
        changed = client.patch(f"{MODELS}/{first['id']}", json={"description": "later"}).json()
        third = create(client, "three")
        live = events(socket, 2)
        assert [(e["position"], e["type"]) for e in live] == [
            (changed["position"], "ModelUpdated"),
            (third["position"], "ModelCreated"),
        ]
    # When a new subscription resumes after the second event, it gets only what followed
    with opened(client, TEST_ADMIN_KEY) as resumed:
        assert resumed.receive_json()["type"] == "connection_ack"
        subscribe(resumed, seen[1]["position"], types=["ModelCreated", "ModelUpdated"])
        assert events(resumed, 2) == live


def test_a_socket_without_a_good_key_is_closed(client: TestClient) -> None:
    for key in (None, "not-a-key"):
        with opened(client, key) as socket, pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 4403


def test_the_stream_ends_when_its_key_is_revoked(client: TestClient) -> None:
    # Given a viewer key listening to the log
    made = client.post("/api/v1/admin/keys", json={"name": "listener", "role": "viewer"}).json()
    with opened(client, made["key"]) as socket:
        assert socket.receive_json()["type"] == "connection_ack"
        create(client, "before")
        subscribe(socket, 0, types=["ModelCreated"])
        assert events(socket, 1)[0]["actor"]
        # When the key is revoked, then the subscription completes
        revoked = client.delete(f"/api/v1/admin/keys/{made['id']}")
        assert revoked.status_code in (200, 204)
        revoked_at = create(client, "after")["position"] - 1
        # (what was stored before the revocation may come first; a stream that went on
        # would send the model created after it, and fail here)
        message = socket.receive_json()
        while message["type"] == "next":
            assert message["payload"]["data"]["modelEvents"]["position"] <= revoked_at
            message = socket.receive_json()
        assert message["type"] == "complete"


def test_bad_arguments_are_an_error_naming_them(client: TestClient) -> None:
    with opened(client, TEST_ADMIN_KEY) as socket:
        assert socket.receive_json()["type"] == "connection_ack"
        subscribe(socket, 0, types=["NoSuchEvent"])
        message = socket.receive_json()
    assert message["type"] in ("error", "next"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "urn:modelledger:problem:invalid-request"
    assert errors[0]["extensions"]["field"] == "types"


def test_a_subscription_posted_over_http_is_refused(client: TestClient) -> None:
    asked = {"query": EVENTS, "variables": {"after": 0}}
    for headers in ({}, {"Accept": "multipart/mixed;subscriptionSpec=1.0, application/json"}):
        response = client.post("/graphql", json=asked, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "urn:modelledger:problem:bad-request"
        assert "subscriptions" in response.json()["detail"].lower()


def test_the_socket_runs_subscriptions_only(client: TestClient) -> None:
    # A query on the socket would run as the key stood when it connected: refused
    with opened(client, TEST_ADMIN_KEY) as socket:
        assert socket.receive_json()["type"] == "connection_ack"
        socket.send_json(
            {"id": "q", "type": "subscribe", "payload": {"query": "{ statistics { totalModels } }"}}
        )
        message = socket.receive_json()
    assert message["type"] in ("error", "next"), message
    assert "data" not in message["payload"] or message["payload"]["data"] is None, message
