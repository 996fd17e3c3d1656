"""The webhook stories' fixtures: a ledger whose rotated secrets sign only briefly, its
API, and a receiver that verifies every delivery with `standardwebhooks`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from modelledger.bootstrap import Ledger
from tests.support.auth import api_client
from tests.support.ledgers import make_ledger
from tests.support.webhook_receiver import WebhookReceiver, receiving
from tests.support.webhook_stories import SECRETS_KEY


@pytest.fixture
def hooked(store_url: str) -> Iterator[Ledger]:
    """A ledger whose rotated-out secrets sign for 2.5 s more (a day in production), and
    whose test deliveries are waited for 1.5 s (15)."""
    built = make_ledger(
        store_url,
        secrets_key=SECRETS_KEY,
        webhooks_secret_overlap_seconds=2.5,
        webhooks_timeout_seconds=1.5,
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
