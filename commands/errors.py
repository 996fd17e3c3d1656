"""Errors of the command layer that are not the model's own rules (write_model.errors).

Their own root: api/errors.py maps each to its problem type.
"""

from __future__ import annotations


class CommandError(Exception):
    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class VersionMismatch(CommandError):
    """The caller's If-Match version is not the model's current version."""


class ConcurrentChange(CommandError):
    """Another writer changed the model between our read and our write (the store's
    version check refused the append)."""


class KeyNotFound(CommandError):
    """No API key has this id."""


class IdempotencyKeyReused(CommandError):
    """An Idempotency-Key was sent again with a different request."""


class ProviderDown(CommandError):
    """A provider (the Hub, OpenAI) cannot be reached or is overloaded; retry later."""


class BackendNotConfigured(CommandError):
    """The request names a backend or target this registry has no credentials for."""


class WebhookNotFound(CommandError):
    """No webhook subscription has this id (or it was deleted)."""
