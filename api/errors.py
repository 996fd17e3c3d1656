"""Every error becomes RFC 9457 problem+json; domain errors map to statuses in one table."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import BadRequest
from api.rate_limit import RateLimited
from api.schemas import Problem
from commands.errors import (
    BackendNotConfigured,
    IdempotencyKeyReused,
    ProviderDown,
    StoreUnavailable,
)
from queries.reading import ProjectionBehind, ReadStoreUnavailable
from write_model.errors import (
    ConcurrentChange,
    DomainError,
    DuplicateModelName,
    InvalidValue,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    RuleViolated,
    VersionMismatch,
)

PROBLEM_JSON = "application/problem+json"
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's detail text
log = logging.getLogger("modelledger.api")

# What every route may answer besides success, documented as the problem+json it is.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
    }
    for status in (400, 401, 403, 404, 409, 412, 413, 422, 429, 503)
}

# Domain error -> (HTTP status, title). The first matching class (by MRO) wins.
STATUS_BY_ERROR: dict[type[DomainError], tuple[int, str]] = {
    BadRequest: (400, "Bad request"),
    NotAuthenticated: (401, "Unauthorized"),
    NotPermitted: (403, "Forbidden"),
    NotFound: (404, "Not found"),
    DuplicateModelName: (409, "Duplicate model name"),
    ConcurrentChange: (409, "Concurrent change"),
    RuleViolated: (409, "Not allowed in the model's current state"),
    VersionMismatch: (412, "Precondition failed"),
    InvalidValue: (422, "Invalid value"),
    IdempotencyKeyReused: (422, "Idempotency-Key reused"),
    RateLimited: (429, "Too many requests"),
    BackendNotConfigured: (422, "Backend not configured"),
    StoreUnavailable: (503, "Service unavailable"),
    ProviderDown: (503, "Provider unavailable"),
    ReadStoreUnavailable: (503, "Service unavailable"),
    ProjectionBehind: (503, "Not yet up to date"),
}


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(error: DomainError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400, "Bad request"


async def domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status, title = status_for(error)
    errors = [{"field": error.field, "message": error.detail}] if error.field else None
    return problem(status, title, error.detail, errors=errors, headers=_headers(error, status))


def _headers(error: DomainError, status: int) -> dict[str, str] | None:
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    if status == 503:
        return {"Retry-After": "1"}
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="modelledger"'}
    return None


async def validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    if any(item["type"] == "json_invalid" for item in error.errors()):
        return problem(
            400,
            "Malformed JSON",
            "the request body is not valid JSON",
            errors=[{"field": "body", "message": "JSON decode error"}],
        )
    return problem(422, "Invalid request", "the request has invalid fields", errors=errors)


async def command_validation_error(_: Request, error: Exception) -> JSONResponse:
    """A command message refused a value the request schema let through."""
    assert isinstance(error, ValidationError)
    errors = [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    return problem(422, "Invalid request", "the request has invalid fields", errors=errors)


async def http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.detail == BODY_PARSE_ERROR:
        return problem(
            400,
            "Malformed JSON",
            "the request body is not valid JSON",
            errors=[{"field": "body", "message": "cannot be parsed"}],
        )
    return problem(
        error.status_code,
        _title(error.status_code),
        str(error.detail),
        headers=getattr(error, "headers", None),
    )


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # A bug of ours, not the client's: log it whole, answer without internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "Internal server error", "an unexpected error occurred")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, command_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
