"""What a GraphQL answer carries beside its data: errors as the specification shapes them,
each with ``extensions.code`` the REST problem type (from api/errors.py's one table), and
``extensions.positions``, the log position each root field's data reflects.

An error that is none of ours is a bug: logged whole, and answered as ``internal-error``
without its words (which may name the store's internals)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from pydantic import ValidationError
from strawberry.extensions import SchemaExtension

from api.errors import INTERNAL_ERROR, INVALID_REQUEST, REFUSALS, kind_of
from api.graphql.context import InvalidArgument, argument_of

log = logging.getLogger("modelledger.api.graphql")


def coded(error: GraphQLError) -> GraphQLError:
    """The error with its problem type in ``extensions.code`` (and the argument at fault
    in ``extensions.field``); one already coded (a subscription's, as it was sent) as is."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):  # the document's own fault
        return _with(error, error.message, INVALID_REQUEST.type, INVALID_REQUEST.status)
    if isinstance(original, InvalidArgument | ValidationError):
        field = getattr(original, "field", None)
        return _with(error, error.message, INVALID_REQUEST.type, INVALID_REQUEST.status, field)
    if isinstance(original, REFUSALS):
        kind = kind_of(original)
        detail = getattr(original, "detail", str(original))
        field = getattr(original, "field", None)
        return _with(error, detail, kind.type, kind.status, field)
    log.error("unexpected error in GraphQL at %s", error.path, exc_info=original)
    return _with(error, "an unexpected error occurred", INTERNAL_ERROR.type, INTERNAL_ERROR.status)


def _with(
    error: GraphQLError, message: str, code: str, status: int, field: str | None = None
) -> GraphQLError:
    extensions: dict[str, Any] = {"code": code, "status": status}
    if field is not None:
        extensions["field"] = argument_of(field)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ProblemCodes(SchemaExtension):
    """Every error of an answer coded, as it leaves (a query's, or a subscription's)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result: Any = self.execution_context.result
        if getattr(result, "errors", None):
            result.errors = [coded(error) for error in result.errors]
        pre = self.execution_context.pre_execution_errors
        if pre:
            self.execution_context.pre_execution_errors = [coded(error) for error in pre]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        if getattr(result, "errors", None):
            result.errors = [coded(error) for error in result.errors]
        yield


class Positions(SchemaExtension):
    """``extensions.positions``: by root field (its alias, if any), the log position its
    data reflects at least; send one as ``minPosition`` to read at least as far."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        positions = getattr(context, "positions", None)
        # (in name order: fields finish in any order, and an answer should read the same)
        return {"positions": dict(sorted(positions.items()))} if positions else {}
