"""Webhooks, as a subscriber lives them: an endpoint (tests/support/webhook_receiver.py)
that verifies every delivery with the `standardwebhooks` library, fed by a deliverer
that follows the log. Each story runs on SQLite and on PostgreSQL. Failures, retries and
refusals: test_webhook_failures.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from commands.archive import export_events
from commands.metric_definitions import (
    DefineMetric,
    RemoveMetricDefinition,
    define_metric,
    remove_metric_definition,
)
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from tests.support.every_event import play
from tests.support.webhook_deliverers import delivering
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhook_stories import (
    HOOKS,
    a_model,
    deliveries_of,
    in_order_per_model,
    signed_by,
    subscribe,
    trained_and_deployed,
)
from write_model.webhook import DELIVERED_TYPES


def test_each_subscription_gets_the_events_its_filters_name_signed_with_its_secret(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given three subscriptions: everything, two event types, one project
    everything = subscribe(api, receiver, description="all")
    typed = subscribe(api, receiver, event_types=["ModelTrained", "ModelDeployed"])
    fraud_only = subscribe(api, receiver, projects=["fraud"])
    with delivering(hooked):
        # When models of two projects are created, trained and deployed, and a metric defined
        fraud, ads = a_model(api, "scorer", "fraud"), a_model(api, "ranker", "ads")
        trained_and_deployed(api, fraud)
        trained_and_deployed(api, ads)
        defined = api.put("/api/v1/metric-definitions/latency", json={"direction": "minimize"})
        assert defined.status_code in (200, 201), defined.text
        expected = {"everything": 9, "typed": 4, "fraud": 4}
        # Then each endpoint gets what it subscribed to, verified with its own secret
        found = receiver.wait_for(
            lambda got: len(got) == sum(expected.values()), "every subscription served"
        )
    mine = {
        name: signed_by(found, made["secret"])
        for name, made in (("everything", everything), ("typed", typed), ("fraud", fraud_only))
    }
    assert {name: len(got) for name, got in mine.items()} == expected
    assert all(len(d.verified_by) == 1 for d in found)  # one secret signs, not another's
    assert {d.type for d in mine["typed"]} == {"ModelTrained", "ModelDeployed"}
    assert {d.data.get("model_id") for d in mine["fraud"]} == {fraud}
    story = ["ModelCreated", "TrainingStarted", "ModelTrained", "ModelDeployed"]
    for model in (fraud, ads):
        assert [d.type for d in mine["everything"] if d.data.get("model_id") == model] == story
    definition = next(d for d in mine["everything"] if d.type == "MetricDefined")
    assert definition.data["metric"] == "latency" and definition.data["direction"] == "minimize"
    trained = next(
        d for d in mine["typed"] if d.type == "ModelTrained" and d.data["model_id"] == ads
    )
    assert trained.data["model_version"] == 1 and trained.data["metrics"] == {"accuracy": 0.9}
    assert trained.data["actor"] == "admin" and trained.data["version"] == 3
    assert {"position", "correlation_id", "causation_id"} <= trained.data.keys()


def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription, and its secret rotated (the overlap is 2.5 s in this ledger)
    made = subscribe(api, receiver)
    rotated = api.post(f"{HOOKS}/{made['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != made["secret"] and rotated.json()["previous_secret_until"]
    receiver.secrets.append(new)
    with delivering(hooked):
        # When an event is delivered during the overlap
        a_model(api, "during")
        during = receiver.wait_for(lambda got: len(got) == 1, "during the overlap")[0]
        # and another after it
        time.sleep(2.6)
        a_model(api, "after")
        after = receiver.wait_for(lambda got: len(got) == 2, "after the overlap")[1]
    # Then both secrets verify the first, only the new one the second
    assert set(during.verified_by) == {made["secret"], new}
    assert after.verified_by == (new,)


def test_redelivery_repeats_a_message_and_replay_sends_new_ones(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given two events delivered
    made = subscribe(api, receiver)
    with delivering(hooked):
        a_model(api, "first")
        a_model(api, "second")
        first = receiver.wait_for(lambda got: len(got) == 2, "two deliveries")
        # When one is redelivered
        oldest = deliveries_of(api, made["id"])[-1]
        again = api.post(f"{HOOKS}/{made['id']}/deliveries/{oldest['id']}/redeliver")
        assert again.status_code == 202, again.text
        # Then it arrives again with its webhook-id
        redelivered = receiver.wait_for(lambda got: len(got) == 3, "the redelivery")[2]
        assert redelivered.message_id == oldest["message_id"]
        assert oldest["message_id"] in {d.message_id for d in first}
        # When the whole log is replayed
        replay = api.post(f"{HOOKS}/{made['id']}/replay", json={"after_position": 0})
        assert replay.status_code == 202, replay.text
        replayed = receiver.wait_for(lambda got: len(got) == 5, "the replay")[3:]
    # Then the same events come as new messages, naming the same positions
    assert {d.data["position"] for d in replayed} == {d.data["position"] for d in first}
    assert not {d.message_id for d in replayed} & {d.message_id for d in first}
    kinds = [d["kind"] for d in deliveries_of(api, made["id"])]
    assert sorted(kinds) == ["event", "event", "redelivery", "replay", "replay"]
    unknown = api.post(f"{HOOKS}/{made['id']}/deliveries/{'0' * 32}/redeliver")
    assert unknown.status_code == 404


def test_a_test_delivery_is_signed_and_answers_with_its_attempt(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    made = subscribe(api, receiver)
    with delivering(hooked):
        tested = api.post(f"{HOOKS}/{made['id']}/test")
    assert tested.status_code == 200, tested.text
    assert tested.json()["kind"] == "test" and tested.json()["state"] == "delivered"
    assert tested.json()["attempts"][0]["status_code"] == 200
    delivery = receiver.verified()[0]
    assert delivery.type == "WebhookTest" and delivery.data["webhook_id"] == made["id"]
    # and with no deliverer running, the test is answered 202 and stays queued
    waiting = api.post(f"{HOOKS}/{made['id']}/test")
    assert waiting.status_code == 202, waiting.text
    assert waiting.json()["state"] == "pending" and waiting.json()["attempts"] == []


def test_no_secret_shows_in_events_exports_lists_or_log_lines(
    hooked: Ledger,
    api: TestClient,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Any,
) -> None:
    # Given a subscription made, rotated and used, with every log line captured
    caplog.set_level("DEBUG")
    made = subscribe(api, receiver)
    rotated = api.post(f"{HOOKS}/{made['id']}/rotate-secret").json()["secret"]
    with delivering(hooked):
        a_model(api, "watched")
        receiver.wait_for(lambda got: len(got) == 1, "a delivery")
    secrets = [made["secret"], rotated]
    keys = [s.removeprefix("whsec_") for s in secrets]
    # When the log is exported, the feed and the subscription are read
    exported = tmp_path / "log.jsonl"
    with exported.open("w") as sink:
        export_events(hooked.event_log, sink, progress=lambda *_: None)
    feed = api.get("/api/v1/events", params={"type": "WebhookSecretRotated"}).json()["items"]
    seen = [
        exported.read_text(),
        str(feed),
        api.get(HOOKS).text,
        api.get(f"{HOOKS}/{made['id']}").text,
        api.get(f"{HOOKS}/{made['id']}/deliveries").text,
        caplog.text,
    ]
    # Then no secret shows anywhere (the log holds only ciphertext, the feed not even that)
    assert feed and "secret" not in feed[0]["data"]
    assert '"secret":' in exported.read_text()  # sealed: the ciphertext is kept
    for text in seen:
        assert not any(key in text for key in keys)


def test_bad_subscriptions_are_refused_naming_the_field(api: TestClient) -> None:
    for body, field in (
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://example.com/x", "event_types": ["KeyIssued"]}, "event_types"),
        ({"url": "https://example.com/x", "projects": ["no spaces"]}, "projects"),
        ({"url": "https://example.com/x", "secret": "mine"}, "secret"),
    ):
        refused = api.post(HOOKS, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert field in refused.text
    unknown = "00000000-0000-4000-8000-000000000000"
    for method, path in (
        ("GET", f"{HOOKS}/{unknown}"),
        ("PATCH", f"{HOOKS}/{unknown}"),
        ("DELETE", f"{HOOKS}/{unknown}"),
        ("POST", f"{HOOKS}/{unknown}/rotate-secret"),
        ("POST", f"{HOOKS}/{unknown}/test"),
        ("GET", f"{HOOKS}/{unknown}/deliveries"),
    ):
        answer = api.request(method, path, json={} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, path, answer.text)
    replay = api.post(f"{HOOKS}/{unknown}/replay", json={"after_position": -1})
    assert replay.status_code == 422
    made = api.post(HOOKS, json={"url": "https://example.com/x"}).json()
    for delivery_id in ("%00", "x" * 32, "0" * 33):
        odd = api.post(f"{HOOKS}/{made['id']}/deliveries/{delivery_id}/redeliver")
        assert odd.status_code == 422, odd.text
    past = api.post(f"{HOOKS}/{made['id']}/replay", json={"after_position": 10**6})
    assert past.status_code == 422 and "after_position" in past.text


def test_the_list_shows_each_subscription_as_reading_it_alone_does(
    api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription changed in every way a subscription changes
    made = subscribe(api, receiver, description="first", projects=["fraud"])
    hook = f"{HOOKS}/{made['id']}"
    changed = api.patch(hook, json={"description": None, "projects": None, "enabled": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "" and changed.json()["projects"] is None
    rotated = api.post(f"{hook}/rotate-secret").json()
    assert api.patch(hook, json={"url": None}).status_code == 422  # a URL it must have
    # When the list is read at the last change's position, and the subscription alone
    listed = api.get(HOOKS, params={"min_position": rotated["position"]}).json()["items"]
    alone = api.get(hook).json()
    # Then both say the same, and neither shows a secret
    assert listed == [alone]
    assert alone["enabled"] is False and alone["disabled_reason"] == "disabled by an admin"
    assert alone["previous_secret_until"] == rotated["previous_secret_until"]
    assert "secret" not in alone


def test_every_event_type_of_the_registry_is_delivered_and_no_other(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription to everything
    everything = subscribe(api, receiver)
    # When every event type of models, keys and metric definitions is recorded
    with delivering(hooked):
        play(hooked.registry)
        described = a_model(api, "described")
        trained_and_deployed(api, described)
        version = api.patch(f"/api/v1/models/{described}/versions/1", json={"description": "v1"})
        assert version.status_code == 200, version.text
        ctx = CommandContext()
        for direction in ("minimize", "maximize"):
            define_metric(hooked.registry, DefineMetric(name="lag", direction=direction), ctx)
        remove_metric_definition(hooked.registry, RemoveMetricDefinition(name="lag"), ctx)
        log = hooked.event_log
        deliverable = [
            type(log.decode(n)).__name__
            for n in log.page(0, 10_000)
            if type(log.decode(n)).__name__ in DELIVERED_TYPES
        ]
        found = receiver.wait_for(lambda got: len(got) == len(deliverable), "every event")
    # Then each of the registry's event types arrived, in the log's order per model, and
    # no key's or webhook's event did
    assert {d.type for d in signed_by(found, everything["secret"])} == DELIVERED_TYPES
    assert sorted(d.type for d in found) == sorted(deliverable)
    for positions in in_order_per_model([d for d in found if "model_id" in d.data]).values():
        assert positions == sorted(positions)
