"""What serves where across the registry: now, or at any past time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import PrincipalDep, allow
from api.errors import ERRORS
from api.queries import sent
from api.query_schemas import DeploymentListResponse
from api.services import ServicesDep
from queries.messages import ListDeployments
from write_model.access import Action

router = APIRouter(
    prefix="/api/v1/deployments",
    tags=["queries"],
    dependencies=[allow(Action.READ)],
    responses=ERRORS,
)


@router.get(
    "",
    response_model=DeploymentListResponse,
    summary="Every model serving an environment, now or as of a time",
)
def list_deployments(
    services: ServicesDep, caller: PrincipalDep, query: Annotated[ListDeployments, Query()]
) -> Response:
    return sent(services.models.serving(query, caller.visible_projects))
