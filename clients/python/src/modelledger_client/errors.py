"""What the server refused, as exceptions chosen by the problem's type (RFC 9457).

Every exception is a ``ModelLedgerError`` carrying the problem document the server sent
(``problem``), its HTTP status, and, for ``InvalidRequest``, the fields at fault.
"""

from __future__ import annotations

import re
from typing import Any


class ModelLedgerError(Exception):
    """A call the registry refused, or one the client could not complete."""

    def __init__(self, problem: dict[str, Any], status: int | None = None) -> None:
        self.problem = problem
        self.status = status if status is not None else problem.get("status")
        self.type: str = str(problem.get("type", "about:blank"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str = str(problem.get("detail", ""))
        said = f"{self.status} " if self.status is not None else ""
        super().__init__(f"{said}{self.title}: {self.detail}".strip())


class NotFound(ModelLedgerError):
    """No such model, version, run, key or metric (or one the key may not see)."""


class Conflict(ModelLedgerError):
    """The model's state does not allow it, its name is taken, another change came
    first, or an Idempotency-Key was reused with another request."""


class PreconditionFailed(ModelLedgerError):
    """``if_match`` is not the model's version: someone changed it meanwhile."""


class InvalidRequest(ModelLedgerError):
    """A value the registry refuses; ``fields`` names each one at fault."""

    @property
    def fields(self) -> dict[str, str]:
        return {e["field"]: e["message"] for e in self.problem.get("errors") or []}


class Unauthorized(ModelLedgerError):
    """No API key, or an unknown or revoked one."""


class Forbidden(ModelLedgerError):
    """The key's role or projects do not allow it."""


class RateLimited(ModelLedgerError):
    """Over the key's rate limit, still after the client's retries."""

    @property
    def retry_after(self) -> float | None:
        value = self.problem.get("retry_after")
        return float(value) if value is not None else None


class Unavailable(ModelLedgerError):
    """The server, its store or a provider cannot answer now, still after the client's
    retries (or the server could not be reached at all)."""


class PayloadTooLarge(ModelLedgerError):
    """The request's body is over the server's limit."""


class UnsupportedMediaType(ModelLedgerError):
    """The request's body is not JSON."""


_BY_TYPE: dict[str, type[ModelLedgerError]] = {
    "not-found": NotFound,
    "duplicate-name": Conflict,
    "concurrent-change": Conflict,
    "conflict": Conflict,
    "idempotency-key-reused": Conflict,
    "precondition-failed": PreconditionFailed,
    "bad-request": InvalidRequest,
    "malformed-json": InvalidRequest,
    "invalid-request": InvalidRequest,
    "invalid-value": InvalidRequest,
    "backend-not-configured": InvalidRequest,
    "headers-too-large": InvalidRequest,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "rate-limited": RateLimited,
    "unavailable": Unavailable,
    "provider-unavailable": Unavailable,
    "not-yet-up-to-date": Unavailable,
    "payload-too-large": PayloadTooLarge,
    "unsupported-media-type": UnsupportedMediaType,
}
_BY_STATUS: dict[int, type[ModelLedgerError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidRequest,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_for(status: int, problem: dict[str, Any]) -> ModelLedgerError:
    """The exception for a problem: by its type, else by its status."""
    kind = re.split(r"[/:]", str(problem.get("type", "")))[-1]  # (a URN's or a URL's end)
    cls = _BY_TYPE.get(kind) or _BY_STATUS.get(status, ModelLedgerError)
    return cls(problem, status)
