"""Webhooks, as a subscriber lives them: an endpoint (tests/support/webhook_receiver.py)
that verifies every delivery with the `standardwebhooks` library, fed by a deliverer
that follows the log. Each story runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from commands.archive import export_events
from modelledger.bootstrap import Ledger
from queries.webhooks import deliveries_page
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger
from tests.support.webhook_deliverers import delivering
from tests.support.webhook_receiver import Delivery, WebhookReceiver, receiving

HOOKS = "/api/v1/admin/webhooks"
SECRETS_KEY = Fernet.generate_key().decode()
PATIENT = "0" + ",0.3" * 60  # retries every 0.3 s, for a minute: never gives up in a test


@pytest.fixture
def hooked(store_url: str) -> Iterator[Ledger]:
    """A ledger whose rotated-out secrets sign for 1.5 s more (a day in production), and
    whose test deliveries are waited for 1 s (15)."""
    built = make_ledger(
        store_url,
        secrets_key=SECRETS_KEY,
        webhooks_secret_overlap_seconds=1.5,
        webhooks_timeout_seconds=1.0,
    )
    yield built
    built.close()


@pytest.fixture
def api(hooked: Ledger) -> Iterator[TestClient]:
    with api_client(hooked) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with receiving() as found:
        yield found


def subscribe(api: TestClient, receiver: WebhookReceiver, **fields: Any) -> dict[str, Any]:
    answer = api.post(HOOKS, json={"url": receiver.url, **fields})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    assert made["secret"].startswith("whsec_")
    receiver.secrets.append(made["secret"])
    return made


def a_model(api: TestClient, name: str, project: str = "fraud") -> str:
    answer = api.post(
        "/api/v1/models",
        json={"name": name, "project": project, "task": "classification", "framework": "sk"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def trained_and_deployed(api: TestClient, model_id: str) -> None:
    run = api.post(f"/api/v1/models/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
    done = api.post(
        f"/api/v1/models/{model_id}/training-runs/{run}/complete",
        json={"metrics": {"accuracy": 0.9}},
    )
    assert done.status_code == 200, done.text
    deployed = api.post(f"/api/v1/models/{model_id}/deploy", json={"environment": "prod"})
    assert deployed.status_code == 200, deployed.text


def signed_by(deliveries: list[Delivery], secret: str) -> list[Delivery]:
    return [d for d in deliveries if secret in d.verified_by]


def in_order_per_model(deliveries: list[Delivery]) -> dict[str, list[int]]:
    """Each model's positions in arrival order (first arrivals: repeats left out)."""
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for delivery in deliveries:
        if delivery.message_id not in seen:
            seen.add(delivery.message_id)
            order[delivery.data["model_id"]].append(delivery.data["position"])
    return dict(order)


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


def deliveries_of(api: TestClient, webhook_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"{HOOKS}/{webhook_id}/deliveries", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def states_in_queue(ledger: Ledger, webhook_id: str) -> list[str]:
    """What the deliverer's queue holds for a subscription (its API is gone once deleted)."""
    with ledger.read_engine.connect() as conn:
        items = deliveries_page(conn, webhook_id, before=None, limit=100)["items"]
    return [item["state"] for item in items]


def wait_until(check: Any, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


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
        # and what happens meanwhile waits
        trained_and_deployed(api, model)
        time.sleep(0.5)
        assert len(receiver.verified()) == 1
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


def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given a subscription, and its secret rotated (the overlap is 1.5 s in this ledger)
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
        time.sleep(1.6)
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
        deleted = api.delete(f"{HOOKS}/{made['id']}")
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        receiver.up()
        a_model(api, "later")
        # Then its waiting delivery is cancelled, and nothing more is queued for it
        wait_until(lambda: states_in_queue(hooked, made["id"]) == ["cancelled"], "cancelled")
        time.sleep(0.3)
    assert states_in_queue(hooked, made["id"]) == ["cancelled"]
    assert receiver.verified() == []
    assert api.get(f"{HOOKS}/{made['id']}").status_code == 404
    assert api.get(HOOKS).json()["items"] == []


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


def test_two_deliverers_on_one_store_queue_each_event_once_and_keep_each_models_order(
    hooked: Ledger, api: TestClient, receiver: WebhookReceiver
) -> None:
    # Given two deliverers following one store (two `deliver` processes, two replicas)
    subscribe(api, receiver)
    subscribe(api, receiver, event_types=["ModelTrained"])
    with delivering(hooked), delivering(hooked):
        # When models change while both run
        models = [a_model(api, f"raced-{n}") for n in range(4)]
        for model in models:
            trained_and_deployed(api, model)
        found = receiver.wait_for(lambda got: len(got) >= 20, "every delivery")
        time.sleep(0.3)  # (a second copy of any would have arrived by now)
    # Then each event reached each subscription once, each model's in log order
    assert len(receiver.verified()) == 20
    assert len({d.message_id for d in found}) == 20
    for secret in receiver.secrets:
        for positions in in_order_per_model(signed_by(found, secret)).values():
            assert positions == sorted(positions)
