"""Every error becomes RFC 9457 problem+json; each kind of problem has one stable type URI,
one status and one title, and domain errors map to those kinds in one table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.paths import allowed_methods, caught_by_a_parameter
from commands.errors import (
    BackendNotConfigured,
    CommandError,
    ConcurrentChange,
    IdempotencyKeyReused,
    KeyNotFound,
    ProviderDown,
    VersionMismatch,
    WebhookNotFound,
)
from commands.ports import StoreUnavailable
from queries.errors import (
    InvalidQuery,
    ProjectionBehind,
    QueryError,
    ReadStoreUnavailable,
    UnknownModel,
    UnknownPart,
    UnknownProjection,
)
from queries.ports import LogUnavailable
from write_model.access import AccessError, NotAuthenticated, NotPermitted
from write_model.errors import (
    DomainError,
    DuplicateModelName,
    InvalidValue,
    NotFound,
    RuleViolated,
)


class HttpError(Exception):
    """A request refused before any layer below is asked (a header, the rate)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class BadRequest(HttpError):
    """A header or query parameter is malformed (the field names it)."""


class RateLimited(HttpError):
    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


PROBLEM_JSON = "application/problem+json"
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's detail text
TYPE_PREFIX = "urn:modelledger:problem:"
log = logging.getLogger("modelledger.api")


@dataclass(frozen=True)
class ProblemKind:
    """What clients key on: ``type`` never changes once released (RFC 9457 section 3.1)."""

    name: str
    status: int
    title: str
    when: str  # for the HTTP API reference and the OpenAPI document

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.name


# -- the one table of problem kinds ---------------------------------------------------------------
BAD_REQUEST = ProblemKind(
    "bad-request",
    400,
    "Bad request",
    "a malformed If-Match, Idempotency-Key, X-Correlation-ID or Content-Length",
)
MALFORMED_JSON = ProblemKind("malformed-json", 400, "Malformed JSON", "the body is not valid JSON")
UNAUTHORIZED = ProblemKind(
    "unauthorized", 401, "Unauthorized", "no API key, or a malformed, unknown or revoked one"
)
FORBIDDEN = ProblemKind("forbidden", 403, "Forbidden", "the key's role or projects do not allow it")
NOT_FOUND = ProblemKind("not-found", 404, "Not found", "no such model, run, version, key or path")
METHOD_NOT_ALLOWED = ProblemKind(
    "method-not-allowed", 405, "Method not allowed", "the path has no such method (see Allow)"
)
DUPLICATE_NAME = ProblemKind(
    "duplicate-name", 409, "Duplicate model name", "the project already has a model so named"
)
CONCURRENT_CHANGE = ProblemKind(
    "concurrent-change", 409, "Concurrent change", "another command changed it first: retry"
)
CONFLICT = ProblemKind(
    "conflict", 409, "Not allowed in the model's current state", "a rule of the model's state"
)
PRECONDITION_FAILED = ProblemKind(
    "precondition-failed", 412, "Precondition failed", "If-Match is not the model's version"
)
PAYLOAD_TOO_LARGE = ProblemKind(
    "payload-too-large", 413, "Content too large", "the body is over MODELLEDGER_MAX_BODY_BYTES"
)
UNSUPPORTED_MEDIA_TYPE = ProblemKind(
    "unsupported-media-type",
    415,
    "Unsupported media type",
    "a body whose Content-Type is not application/json (or application/*+json)",
)
INVALID_REQUEST = ProblemKind(
    "invalid-request",
    422,
    "Invalid request",
    "a field is missing, unknown or ill-typed: e.g. a metric that is not a finite number, "
    "control characters in a line of text, a time without its zone",
)
INVALID_VALUE = ProblemKind(
    "invalid-value",
    422,
    "Invalid value",
    "a value the registry refuses (e.g. an untrained version)",
)
IDEMPOTENCY_KEY_REUSED = ProblemKind(
    "idempotency-key-reused",
    422,
    "Idempotency-Key reused",
    "the key was sent before with another request (or by another API key)",
)
BACKEND_NOT_CONFIGURED = ProblemKind(
    "backend-not-configured",
    422,
    "Backend not configured",
    "the backend or target named has no credentials here",
)
RATE_LIMITED = ProblemKind(
    "rate-limited", 429, "Too many requests", "over the rate limit: wait Retry-After seconds"
)
HEADERS_TOO_LARGE = ProblemKind(
    "headers-too-large",
    431,
    "Request header fields too large",
    "a header over 8 KiB, headers over 64 KiB in all, or more than 100 of them",
)
INTERNAL_ERROR = ProblemKind("internal-error", 500, "Internal server error", "a bug of ours")
UNAVAILABLE = ProblemKind(
    "unavailable",
    503,
    "Service unavailable",
    "the event store or the read store is unreachable: nothing was recorded, so retry "
    "(best with an Idempotency-Key) after Retry-After",
)
PROVIDER_UNAVAILABLE = ProblemKind(
    "provider-unavailable", 503, "Provider unavailable", "the Hub or OpenAI cannot be reached"
)
NOT_YET_UP_TO_DATE = ProblemKind(
    "not-yet-up-to-date", 503, "Not yet up to date", "a projection is not yet at min_position"
)
KINDS = (
    BAD_REQUEST,
    MALFORMED_JSON,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    DUPLICATE_NAME,
    CONCURRENT_CHANGE,
    CONFLICT,
    PRECONDITION_FAILED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    INVALID_REQUEST,
    INVALID_VALUE,
    IDEMPOTENCY_KEY_REUSED,
    BACKEND_NOT_CONFIGURED,
    RATE_LIMITED,
    HEADERS_TOO_LARGE,
    INTERNAL_ERROR,
    UNAVAILABLE,
    PROVIDER_UNAVAILABLE,
    NOT_YET_UP_TO_DATE,
)

# Every error root (the model's rules, access, commands, queries, stores, HTTP) -> kind.
# The first matching class (by MRO) wins.
KIND_BY_ERROR: dict[type[Exception], ProblemKind] = {
    BadRequest: BAD_REQUEST,
    NotAuthenticated: UNAUTHORIZED,
    NotPermitted: FORBIDDEN,
    NotFound: NOT_FOUND,
    DuplicateModelName: DUPLICATE_NAME,
    ConcurrentChange: CONCURRENT_CHANGE,
    RuleViolated: CONFLICT,
    VersionMismatch: PRECONDITION_FAILED,
    InvalidValue: INVALID_VALUE,
    InvalidQuery: INVALID_VALUE,
    UnknownModel: NOT_FOUND,
    UnknownPart: NOT_FOUND,
    UnknownProjection: NOT_FOUND,
    IdempotencyKeyReused: IDEMPOTENCY_KEY_REUSED,
    RateLimited: RATE_LIMITED,
    BackendNotConfigured: BACKEND_NOT_CONFIGURED,
    StoreUnavailable: UNAVAILABLE,
    LogUnavailable: UNAVAILABLE,
    ProviderDown: PROVIDER_UNAVAILABLE,
    KeyNotFound: NOT_FOUND,
    WebhookNotFound: NOT_FOUND,
    ReadStoreUnavailable: UNAVAILABLE,
    ProjectionBehind: NOT_YET_UP_TO_DATE,
}
# What the framework answers by status alone (an unknown path, a method it lacks...).
KIND_BY_STATUS: dict[int, ProblemKind] = {
    kind.status: kind
    for kind in (
        BAD_REQUEST,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        INVALID_REQUEST,
        HEADERS_TOO_LARGE,
        INTERNAL_ERROR,
        UNAVAILABLE,
    )
}
# The problem schema, once in the OpenAPI components (api.openapi puts it there).
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# What every route may answer besides success, documented as the problem+json it is.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    for status in (400, 401, 403, 404, 409, 412, 413, 422, 429, 503)
}


def problem_body(
    kind: ProblemKind, detail: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind.type,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def problem(
    kind: ProblemKind,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(kind, detail, errors)
    return JSONResponse(body, status_code=kind.status, media_type=PROBLEM_JSON, headers=headers)


# The roots of the errors above: each is answered as its problem kind.
REFUSALS: tuple[type[Exception], ...] = (
    DomainError,
    AccessError,
    CommandError,
    QueryError,
    HttpError,
    StoreUnavailable,
    LogUnavailable,
    ReadStoreUnavailable,
)


def kind_of(error: Exception) -> ProblemKind:
    for cls in type(error).__mro__:
        if cls in KIND_BY_ERROR:
            return KIND_BY_ERROR[cls]
    return BAD_REQUEST


def status_for(error: Exception) -> tuple[int, str]:
    kind = kind_of(error)
    return kind.status, kind.title


async def refused(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, REFUSALS)
    kind = kind_of(error)
    detail: str = getattr(error, "detail", str(error))
    field: str | None = getattr(error, "field", None)
    errors = [{"field": field, "message": detail}] if field else None
    return problem(kind, detail, errors=errors, headers=_headers(error, kind.status))


def _headers(error: Exception, status: int) -> dict[str, str] | None:
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    if status == 503:
        return {"Retry-After": "1"}
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="modelledger"'}
    return None


def _malformed_json(message: str) -> JSONResponse:
    return problem(
        MALFORMED_JSON,
        "the request body is not valid JSON",
        errors=[{"field": "body", "message": message}],
    )


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if caught_by_a_parameter(request):  # no model is named "top-performing": 405
        return method_not_allowed(request)
    errors = [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    if any(item["type"] == "json_invalid" for item in error.errors()):
        return _malformed_json("JSON decode error")
    return problem(INVALID_REQUEST, "the request has invalid fields", errors=errors)


async def command_validation_error(_: Request, error: Exception) -> JSONResponse:
    """A command message refused a value the request schema let through."""
    assert isinstance(error, ValidationError)
    errors = [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    return problem(INVALID_REQUEST, "the request has invalid fields", errors=errors)


async def http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.detail == BODY_PARSE_ERROR:
        return _malformed_json("cannot be parsed")
    kind = KIND_BY_STATUS.get(error.status_code)
    headers = getattr(error, "headers", None)
    if kind is None:  # a status no kind has (none today): "no more than the status says"
        body: dict[str, Any] = {"type": "about:blank", "title": _title(error.status_code)}
        body |= {"status": error.status_code, "detail": str(error.detail)}
        return JSONResponse(body, error.status_code, headers, media_type=PROBLEM_JSON)
    detail, errors = str(error.detail), None
    if kind is NOT_FOUND:  # the router's (or the static files'): no such path
        detail = f"nothing at {request.url.path}"
        errors = [{"field": "path", "message": detail}]
    elif kind is METHOD_NOT_ALLOWED:
        return method_not_allowed(request)
    return problem(kind, detail, errors=errors, headers=headers)


def method_not_allowed(request: Request) -> JSONResponse:
    """Allow names every method of the path (the router names the first route's only)."""
    detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(METHOD_NOT_ALLOWED, detail, headers={"Allow": allowed_methods(request)})


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # A bug of ours, not the client's: log it whole, answer without internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(INTERNAL_ERROR, "an unexpected error occurred")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    for root in REFUSALS:
        app.add_exception_handler(root, refused)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, command_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
