"""Errors of the read side: a question the readers cannot answer as asked.

Their own root, apart from the write model's rules (``DomainError``); api/errors.py
maps each to its problem type, as it maps every other root.
"""

from __future__ import annotations


class QueryError(Exception):
    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidQuery(QueryError):
    """A filter, cursor or time the readers refuse (the field names it)."""


class UnknownModel(QueryError):
    """No such model, or not one the reader may see: the same words for both."""


class UnknownPart(QueryError):
    """A version or training run the model does not have."""


class UnknownProjection(QueryError):
    """No projection of that name, or it has not started yet."""


class ProjectionBehind(QueryError):
    """A projection has not reached the position a read must reflect (bounded wait over)."""


class ReadStoreUnavailable(Exception):
    """The read database cannot be reached; the read may be retried."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field: str | None = None
