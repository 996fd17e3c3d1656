"""An API process drops the cached models another process changed, so its next
command on them is decided on the current model instead of losing a race."""

from __future__ import annotations

import time
from uuid import UUID

from commands.handlers import handle_sync
from commands.messages import UpdateModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger

MODELS = "/api/v1/models"


def cached_version(ledger: Ledger, model_id: UUID) -> int | None:
    cache = ledger.registry.repository.cache
    assert cache is not None
    try:
        return int(cache.get(model_id).version)
    except KeyError:
        return None


def test_a_model_changed_by_another_process_is_dropped_from_the_cache(store_url: str) -> None:
    replica_a = make_ledger(store_url)
    replica_b = make_ledger(store_url, projections=False)
    try:
        with api_client(replica_a) as a:
            # Given a model created through replica A, which caches it
            body = {"name": "m", "task": "t", "framework": "f"}
            model_id = UUID(a.post(MODELS, json=body).json()["id"])
            # and changed again through A: its own change keeps it cached
            assert a.patch(f"{MODELS}/{model_id}", json={"description": "a"}).status_code == 200
            time.sleep(0.2)  # several rounds of following the log
            assert cached_version(replica_a, model_id) == 2
            # When replica B changes it
            handle_sync(
                replica_b.registry,
                UpdateModel(model_id=model_id, description="b"),
                CommandContext(),
            )
            # Then A drops its copy, and its next change is decided on version 3
            deadline = time.monotonic() + 5
            while cached_version(replica_a, model_id) is not None:
                assert time.monotonic() < deadline, "A still holds version 2"
                time.sleep(0.01)
            changed = a.patch(f"{MODELS}/{model_id}", json={"description": "c"}).json()
            assert changed["version"] == 4
    finally:
        replica_a.close()
        replica_b.close()
