"""What serves where across the registry: now, or at any past time."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import PrincipalDep, allow
from api.deps import LedgerDep
from api.errors import ERRORS
from api.queries import answer
from queries.deployments import deployed
from queries.messages import ListDeployments
from read_model.tables import DEPLOYMENTS_VERSION
from write_model.access import Action
from write_model.values import instant

router = APIRouter(
    prefix="/api/v1/deployments", tags=["queries"], dependencies=[allow(Action.READ)]
)


@router.get("", responses=ERRORS, summary="Every model serving an environment, now or as of a time")
def list_deployments(
    ledger: LedgerDep, caller: PrincipalDep, query: Annotated[ListDeployments, Query()]
) -> Response:
    as_of = instant(query.as_of) if query.as_of is not None else None
    visible = caller.visible_projects

    def shows(model_id: str) -> bool:
        assert visible is not None
        return ledger.model_projects.project_of(UUID(model_id)) in visible

    with ledger.reading("deployments", DEPLOYMENTS_VERSION, query.min_position) as snapshot:
        page = deployed(snapshot, query, as_of, None if visible is None else shows)
        return answer(page, snapshot.position)
