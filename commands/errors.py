"""Errors of the command layer that are not about the model itself."""

from __future__ import annotations

from write_model.errors import DomainError


class StoreUnavailable(DomainError):
    """The event store cannot be reached; the command may be retried."""


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key was sent again with a different request."""


class ProviderDown(DomainError):
    """A provider (the Hub, OpenAI) cannot be reached or is overloaded; retry later."""


class BackendNotConfigured(DomainError):
    """The request names a backend or target this registry has no credentials for."""
