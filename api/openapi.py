"""What the OpenAPI document adds to the routes' own: the problem+json schema with every
problem type, the answers the request limits (api.limits) give on any operation, and
those every operation that takes a key may give (api.auth)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.auth import Permission
from api.errors import (
    BAD_REQUEST,
    FORBIDDEN,
    HEADERS_TOO_LARGE,
    KINDS,
    PAYLOAD_TOO_LARGE,
    PROBLEM_JSON,
    PROBLEM_REF,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    ProblemKind,
)
from api.schemas import Problem
from write_model.access import Action

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
Operation = tuple[str, str]  # (path, method)


def problem_schemas() -> dict[str, dict[str, Any]]:
    """Problem and the schemas it refers to, as OpenAPI components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    parts: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    kinds = "\n".join(f"- `{k.type}` ({k.status} {k.title}): {k.when}" for k in KINDS)
    schema["description"] = (
        "An RFC 9457 problem. `type` names the kind of problem and never changes: key on it. "
        "`errors` names the field, header, parameter or path at fault.\n\n" + kinds
    )
    schema["properties"]["type"]["enum"] = [kind.type for kind in KINDS]
    return {**parts, "Problem": schema}


def _answer(kind: ProblemKind) -> dict[str, Any]:
    return {"description": kind.title, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _permissions(dependant: Dependant) -> Iterator[Permission]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Permission):
            yield dependency.call
        yield from _permissions(dependency)


def refusing(app: FastAPI) -> set[Operation]:
    """The operations some role is refused (every role may read): they may answer 403."""
    found: set[Operation] = set()
    for route in iter_route_contexts(app.routes):  # with the dependencies of its routers
        if isinstance(route.original_route, APIRoute) and any(
            permission.action is not Action.READ for permission in _permissions(route.dependant)
        ):
            found |= {(str(route.path_format), method.lower()) for method in route.methods or ()}
    return found


def amend(document: dict[str, Any], refused: set[Operation]) -> None:
    document.setdefault("components", {}).setdefault("schemas", {}).update(problem_schemas())
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            # Headers and bodies are checked before routing (api.limits): any request may
            # send a body, which must then be JSON, within the cap, its length a number.
            kinds = [BAD_REQUEST, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, HEADERS_TOO_LARGE]
            if operation.get("security"):  # a key is checked, and its requests counted
                kinds += [UNAUTHORIZED, RATE_LIMITED]
            if (path, method) in refused:
                kinds.append(FORBIDDEN)
            responses = operation.setdefault("responses", {})
            for kind in kinds:
                responses.setdefault(str(kind.status), _answer(kind))


def install(app: FastAPI) -> None:
    built = app.openapi  # FastAPI's: builds the document once and keeps it

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            amend(built(), refusing(app))
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
