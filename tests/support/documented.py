"""The app's OpenAPI document as a client reads it: the string schema a field or parameter
is given, and whether the service accepts a value (tests/unit/test_documented_*.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import ValidationError

from modelledger.settings import Settings
from modelledger.web import create_app


@cache
def openapi_document() -> dict[str, Any]:
    return create_app(Settings(_env_file=None, database_url="memory://")).openapi()


def string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of an optional value's schema (or its items', for a list)."""
    schema = schema.get("items", schema) if schema.get("type") == "array" else schema
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            return dict(branch)
    raise AssertionError(f"no string in {schema}")


def parameter(path: str, method: str, name: str) -> dict[str, Any]:
    for found in openapi_document()["paths"][path][method]["parameters"]:
        if found["name"] == name:
            return string_schema(found["schema"])
    raise AssertionError(f"{method} {path} has no parameter {name}")


def accepts(build: Callable[[str], object]) -> Callable[[str], bool]:
    """Whether ``build`` (a request model, a type adapter) takes the value."""

    def accepted(value: str) -> bool:
        try:
            build(value)
        except ValidationError:
            return False
        return True

    return accepted
