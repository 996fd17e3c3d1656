"""Webhooks when things go wrong: an endpoint down, gone (410), busy (429) or failing
past the schedule; a subscription deleted with deliveries waiting; targets a delivery
must not reach; two deliverers on one store. Each story runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.support.webhook_deliverers import delivering
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhook_stories import (
    HOOKS,
    PATIENT,
    a_model,
    deliveries_of,
    in_order_per_model,
    signed_by,
    states_in_queue,
    subscribe,
    trained_and_deployed,
    wait_until,
)


def test_a_receiver_down_for_a_while_gets_every_event_in_order_with_stable_ids(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription whose endpoint is down
    made = subscribe(api, receiver)
    receiver.down()
    with delivering(hooked, PATIENT):
        # When three models change while it is down, and attempts fail
        models = [a_model(api, f"m{n}") for n in range(3)]
        for model in models:
            trained_and_deployed(api, model)
        wait_until(
            lambda: (
                len(deliveries_of(api, made["id"])) >= 3
                and all(d["attempts"] for d in deliveries_of(api, made["id"])[-3:])
            ),
            "the first deliveries tried and failed",
        )
        failed = deliveries_of(api, made["id"])[-1]["attempts"][0]
        assert failed["status_code"] is None and failed["error"]
        # and it comes back on the same address
        receiver.up()
        found = receiver.wait_for(lambda got: len({d.message_id for d in got}) == 12, "all 12")
    # Then every event arrived, each model's in log order
    order = in_order_per_model(found)
    assert sorted(order) == sorted(models)
    assert all(
        positions == sorted(positions) and len(positions) == 4 for positions in order.values()
    )
    # and each carries the webhook-id the delivery log shows for it, however often tried
    logged = {d["message_id"]: d for d in deliveries_of(api, made["id"])}
    assert {d.message_id for d in found} == set(logged)
    assert all(d["state"] == "delivered" for d in logged.values())
    assert any(len(d["attempts"]) > 1 for d in logged.values())


def test_a_410_disables_the_subscription_and_enabling_it_resumes_where_it_stopped(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription whose endpoint answers 410 Gone once
    made = subscribe(api, receiver)
    receiver.planned.append((410, {}))
    with delivering(hooked, PATIENT):
        model = a_model(api, "gone")
        # Then it is disabled, by the deliverer, with the reason
        wait_until(lambda: not api.get(f"{HOOKS}/{made['id']}").json()["enabled"], "disabled")
        shown = api.get(f"{HOOKS}/{made['id']}").json()
        assert "410" in shown["disabled_reason"]
        feed = api.get("/api/v1/events", params={"type": "WebhookDisabled"}).json()["items"]
        assert [e["actor"] for e in feed] == ["webhook-deliverer"]
        # and what happens meanwhile waits, held
        trained_and_deployed(api, model)
        time.sleep(0.5)
        assert len(receiver.verified()) == 1
        held = deliveries_of(api, made["id"])
        assert len(held) == 4 and all(d["next_attempt_at"] is None for d in held)
        # When an admin enables it again
        enabled = api.patch(f"{HOOKS}/{made['id']}", json={"enabled": True})
        assert enabled.status_code == 200 and enabled.json()["enabled"] is True
        # Then the held delivery (the same webhook-id) and the later ones arrive, in order
        found = receiver.wait_for(lambda got: len(got) == 5, "the held deliveries")
    assert found[0].message_id == found[1].message_id and found[1].type == "ModelCreated"
    assert [d.type for d in found[1:]] == [
        "ModelCreated",
        "TrainingStarted",
        "ModelTrained",
        "ModelDeployed",
    ]


def test_a_429_is_retried_after_its_retry_after(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given an endpoint that answers 429 with Retry-After: 1 (the schedule says 0.2 s)
    subscribe(api, receiver)
    receiver.planned.append((429, {"retry-after": "1"}))
    with delivering(hooked, "0,0.2,0.2"):
        a_model(api, "busy")
        found = receiver.wait_for(lambda got: len(got) == 2, "the retry")
    # Then the retry waited the second out, and carried the same webhook-id
    assert found[1].at - found[0].at >= 1.0
    assert found[0].message_id == found[1].message_id


def test_a_delivery_failing_past_the_schedule_disables_its_subscription(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given an endpoint that always answers 500, and a schedule of three attempts
    made = subscribe(api, receiver)
    receiver.answer = lambda _: (500, {})
    with delivering(hooked, "0,0.1,0.1"):
        a_model(api, "broken")
        wait_until(lambda: not api.get(f"{HOOKS}/{made['id']}").json()["enabled"], "disabled")
    # Then it was tried three times, and the reason says so
    assert len(receiver.verified()) == 3
    reason = api.get(f"{HOOKS}/{made['id']}").json()["disabled_reason"]
    assert "failed 3 times" in reason and "500" in reason
    attempts = deliveries_of(api, made["id"])[0]["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 500, 500]
    assert attempts[0]["response"] == "answer 500"


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/hooks",
        "http://127.0.0.1:{port}/hooks",
        "http://[::1]:{port}/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hooks",
        "http://[::ffff:127.0.0.1]:{port}/hooks",
    ],
)
def test_a_target_on_a_private_address_is_refused_where_the_connection_is_made(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver, target: str
) -> None:
    # Given a subscription to a loopback, private, link-local or mapped address
    made = api.post(HOOKS, json={"url": target.format(port=receiver.port)}).json()
    # When the deliverer runs without MODELLEDGER_WEBHOOKS_ALLOW_PRIVATE_TARGETS
    with delivering(hooked, allow_private=False):
        tested = api.post(f"{HOOKS}/{made['id']}/test")
    # Then the attempt is refused before any connection, saying why
    assert tested.status_code == 200, tested.text
    attempt = tested.json()["attempts"][0]
    assert tested.json()["state"] == "failed" and attempt["status_code"] is None
    assert "an address webhooks may not reach" in attempt["error"]
    assert receiver.verified() == []


def test_a_deleted_subscription_gets_nothing_more(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription with a delivery waiting on an endpoint that is down
    made = subscribe(api, receiver)
    receiver.down()
    with delivering(hooked, PATIENT):
        a_model(api, "queued")
        wait_until(
            lambda: any(d["attempts"] for d in deliveries_of(api, made["id"])), "a failed attempt"
        )
        # When it is deleted, and its endpoint comes back while models change
        once = {"Idempotency-Key": "delete-it-once"}
        deleted = api.delete(f"{HOOKS}/{made['id']}", headers=once)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        # (its answer lost, the retry answers as the first did)
        assert api.delete(f"{HOOKS}/{made['id']}", headers=once).json() == deleted.json()
        receiver.up()
        a_model(api, "later")
        # Then its waiting delivery is cancelled, and nothing more is queued for it
        wait_until(lambda: states_in_queue(hooked, made["id"]) == ["cancelled"], "cancelled")
        time.sleep(0.3)
    assert states_in_queue(hooked, made["id"]) == ["cancelled"]
    assert receiver.verified() == []
    assert api.get(f"{HOOKS}/{made['id']}").status_code == 404
    assert api.get(HOOKS).json()["items"] == []


def test_two_deliverers_on_one_store_queue_each_event_once_and_keep_each_models_order(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given two deliverers following one store (two `deliver` processes, two replicas)
    subscribe(api, receiver)
    subscribe(api, receiver, event_types=["ModelTrained"])
    with delivering(hooked), delivering(hooked):
        # When models change while both run, and the log is replayed to the first
        models = [a_model(api, f"raced-{n}") for n in range(4)]
        for model in models:
            trained_and_deployed(api, model)
        found = receiver.wait_for(lambda got: len(got) >= 20, "every delivery")
        first = api.get(HOOKS).json()["items"][0]["id"]
        replay = api.post(f"{HOOKS}/{first}/replay", json={"after_position": 0})
        assert replay.status_code == 202
        receiver.wait_for(lambda got: len(got) >= 36, "the replay")
        time.sleep(0.3)  # (a second copy of any would have arrived by now)
    # Then each event reached each subscription once, and the replay once more
    assert len(receiver.verified()) == 36
    assert len({d.message_id for d in found}) == 20
    for secret in receiver.secrets:
        for positions in in_order_per_model(signed_by(found, secret)).values():
            assert positions == sorted(positions)


def test_an_unreadable_retry_after_is_no_wait_and_stops_nothing(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given an endpoint whose 429 says Retry-After in a byte that is a digit to no one
    subscribe(api, receiver)
    receiver.planned.append((429, {"retry-after": "\u00b2"}))
    with delivering(hooked, "0,0.2,0.2"):
        a_model(api, "odd")
        # Then the retry follows the schedule, and deliveries go on
        receiver.wait_for(lambda got: len(got) == 2, "the retry")
        a_model(api, "next")
        found = receiver.wait_for(lambda got: len(got) == 3, "the next event")
    assert found[0].message_id == found[1].message_id != found[2].message_id


def test_a_subscription_deleted_during_an_attempt_keeps_its_delivery_cancelled(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a delivery in flight to a slow endpoint
    made = subscribe(api, receiver)
    receiver.delay = 1.0
    with delivering(hooked, PATIENT):
        a_model(api, "slow")
        receiver.wait_for(lambda got: len(got) == 1, "the attempt under way")
        # When the subscription is deleted before the answer comes
        assert api.delete(f"{HOOKS}/{made['id']}").status_code == 200
        time.sleep(1.5)  # (the answer came, and was recorded)
    # Then the delivery stays cancelled: nothing waits for a subscription that is gone
    assert states_in_queue(hooked, made["id"]) == ["cancelled"]
