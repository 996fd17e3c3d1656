"""Standard Webhooks 1.0 signatures: ``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` under each secret in force, space separated (two while a rotated
secret still signs), so any of the specification's verifier libraries accepts them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64


def new_secret() -> str:
    """A signing secret as subscribers are given it: ``whsec_`` and base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One signature: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secrets_in_force: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of a delivery (every secret in force signs it)."""
    if not secrets_in_force:
        raise ValueError("a delivery needs at least one secret to sign it")
    signatures = " ".join(signature(s, message_id, timestamp, body) for s in secrets_in_force)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
