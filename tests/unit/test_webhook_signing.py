"""Deliveries are signed as Standard Webhooks 1.0 says: checked here with the
specification's own verifier (`standardwebhooks`), never with our signing code."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from write_model.webhook_signing import new_secret, signed_headers

BODY = b'{"type":"ModelTrained","timestamp":"2026-12-07T18:00:00Z","data":{"position":7}}'


def test_a_delivery_verifies_with_its_subscriptions_secret_and_no_other() -> None:
    secret, now = new_secret(), int(time.time())
    headers = signed_headers([secret], "msg_7_1", now, BODY)
    assert Webhook(secret).verify(BODY, headers) is not None
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):  # a changed body
        Webhook(secret).verify(BODY.replace(b"7", b"8"), headers)


def test_while_two_secrets_sign_either_verifies() -> None:
    new, old, now = new_secret(), new_secret(), int(time.time())
    headers = signed_headers([new, old], "msg_9_1", now, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers) is not None


def test_a_secret_is_whsec_and_base64_of_enough_random_bytes() -> None:
    import base64

    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert new_secret() != secret
