"""Errors of the command layer that are not the model's own rules (write_model.errors).

Their own root: api/errors.py maps each to its problem type.
"""

from __future__ import annotations


class CommandError(Exception):
    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class IdempotencyKeyReused(CommandError):
    """An Idempotency-Key was sent again with a different request."""


class ProviderDown(CommandError):
    """A provider (the Hub, OpenAI) cannot be reached or is overloaded; retry later."""


class BackendNotConfigured(CommandError):
    """The request names a backend or target this registry has no credentials for."""
