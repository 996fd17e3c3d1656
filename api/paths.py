"""What the app's routes say of a request's path: the methods it has (a 405 lists them
all in Allow, not only the first route's), and whether a route of its own names it:
``/api/v1/models/top-performing`` is no model id, whatever method is sent to it."""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import RouteContext, iter_route_contexts


def _is_fixed(route: RouteContext | object) -> bool:
    template = getattr(route, "path_format", None) or getattr(route, "path", None) or "{"
    return "{" not in template


def _routes_at(request: Request) -> list[RouteContext]:
    """The routes whose path is this one: those that name it, if any, else those whose
    parameters match it."""
    path = request.scope.get("path", "")
    matching = [
        route
        for route in iter_route_contexts(request.app.routes)
        if route.methods and (regex := getattr(route, "path_regex", None)) and regex.match(path)
    ]
    fixed = [route for route in matching if _is_fixed(route)]
    return fixed or matching


def allowed_methods(request: Request) -> str:
    """The Allow header's value: every method the path has."""
    return ", ".join(
        sorted({method for route in _routes_at(request) for method in route.methods or ()})
    )


def caught_by_a_parameter(request: Request) -> bool:
    """The request went to a route with path parameters although a route of its own
    names its path (for other methods): PUT /api/v1/models/top-performing is not
    PUT /api/v1/models/{model_id}."""
    return not _is_fixed(request.scope.get("route")) and any(
        _is_fixed(route) for route in _routes_at(request)
    )
