"""Query parameters a route does not take are refused (422 naming each), on every
`/api/v1` route: a typo such as `?limt=5` would otherwise be answered as if it were not
there."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel


async def only_known_parameters(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _taken_by(route))
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "Extra inputs are not permitted",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )


# By route (routes are neither hashable nor short-lived: each is kept with its names).
_TAKEN: dict[int, tuple[APIRoute, frozenset[str]]] = {}


def _taken_by(route: APIRoute) -> frozenset[str]:
    """The names the route reads from the query string, those of a parameter model's
    fields included."""
    kept = _TAKEN.get(id(route))
    if kept is None or kept[0] is not route:
        kept = _TAKEN[id(route)] = (route, frozenset(_query_names(route.dependant)))
    return kept[1]


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for parameter in dependant.query_params:
        model = parameter.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names |= {field.alias or name for name, field in model.model_fields.items()}
        else:
            names.add(parameter.alias)
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names
