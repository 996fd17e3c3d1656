"""Idempotency-Key: a retried command returns its first response and appends nothing.

The record (commands.ports.IdempotencyRecord) is written in the same transaction as the
command's events; this module says when two requests are the same one.
"""

from __future__ import annotations

import hashlib
import json

MAX_KEY_LENGTH = 200


def fingerprint(method: str, path: str, body: object, sender: str) -> str:
    """Same key with a different request is a client bug; the hash detects it.
    The sender is part of the request: another key's retry is not this one's."""
    canonical = json.dumps([method.upper(), path, body, sender], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
