"""`modelledger deliver` as production runs it: its own process, killed with SIGKILL in
the middle of a batch and started again. Nothing is lost, and a delivery repeated
because its answer was lost carries the same webhook-id."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from cryptography.fernet import Fernet

from commands.handlers import handle_sync
from commands.messages import CreateModel
from commands.registry import CommandContext
from commands.webhooks import CreateWebhook, create_webhook
from tests.support.ledgers import make_ledger
from tests.support.processes import ModelLedgerProcess
from tests.support.webhook_receiver import Delivery, receiving

MODELS = 20


def test_a_deliverer_killed_mid_batch_loses_nothing_and_repeats_with_the_same_ids(
    store_url: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    ledger = make_ledger(store_url, secrets_key=key)
    env = {
        "MODELLEDGER_DATABASE_URL": store_url,
        "MODELLEDGER_DATA_DIR": str(tmp_path / "data"),
        "MODELLEDGER_SECRETS_KEY": key,
        "MODELLEDGER_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
        "MODELLEDGER_WEBHOOKS_RETRY_SCHEDULE": "0" + ",0.2" * 50,
    }
    try:
        with receiving() as receiver:
            # Given a subscription, a slow endpoint, and a deliverer process
            made = create_webhook(
                ledger.registry, ledger.sealer(), CreateWebhook(url=receiver.url), CommandContext()
            )
            receiver.secrets.append(made.secret)
            receiver.delay = 3.0  # (so that none has been answered when the kill comes)
            deliverer = ModelLedgerProcess(["deliver"], env, tmp_path, "deliver").start()
            # When models are created, and the deliverer is killed with deliveries in flight
            for n in range(MODELS):
                create = CreateModel(name=f"m{n}", task="classification", framework="sk")
                handle_sync(ledger.registry, create, CommandContext())
            receiver.wait_for(lambda got: len(got) >= 5, "deliveries in flight", seconds=30)
            deliverer.kill()
            in_flight = {d.message_id for d in receiver.verified()}
            # and started again, the endpoint answering at once now
            receiver.delay = 0.0
            again = ModelLedgerProcess(["deliver"], env, tmp_path, "deliver-again").start()
            try:
                found = receiver.wait_for(
                    lambda got: (
                        len({d.data["position"] for d in got}) == MODELS
                        and in_flight <= repeated(got)
                    ),
                    "every event delivered, those in flight again",
                    seconds=60,
                )
            finally:
                assert again.stop() == 0, again.output()
    finally:
        ledger.close()
    # Then every event arrived, each under one webhook-id, and those in flight came again
    ids: dict[int, set[str]] = defaultdict(set)
    for delivery in found:
        ids[delivery.data["position"]].add(delivery.message_id)
    assert len(ids) == MODELS and all(len(same) == 1 for same in ids.values())
    assert len(in_flight) >= 5
    assert "webhook deliverer stopped" in again.output()


def repeated(deliveries: list[Delivery]) -> set[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for delivery in deliveries:
        (twice if delivery.message_id in seen else seen).add(delivery.message_id)
    return twice
