"""Idempotency-Key: a retried command returns its first response and appends nothing.

The record is written in the same transaction as the command's events, so a
crash can never leave events without their key (or a key without events).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    model_id: str
    model_version: int
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredResponse:
    """A first response as it is replayed, with the position of its last event."""

    record: IdempotencyRecord
    position: int | None


def fingerprint(method: str, path: str, body: object, sender: str) -> str:
    """Same key with a different request is a client bug; the hash detects it.
    The sender is part of the request: another key's retry is not this one's."""
    canonical = json.dumps([method.upper(), path, body, sender], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
