"""The ModelLedger registry from Python.

``ModelLedger`` for plain code and ``AsyncModelLedger`` for asyncio, with the same
methods: every command is sent with an Idempotency-Key and retried safely, and every
read reflects the client's own commands (``min_position``).
"""

from modelledger_client._async.client import AsyncModelLedger
from modelledger_client._sync.client import ModelLedger
from modelledger_client.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    ModelLedgerError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from modelledger_client.retries import RetryPolicy

__all__ = [
    "AsyncModelLedger",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "ModelLedger",
    "ModelLedgerError",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "RateLimited",
    "RetryPolicy",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]
