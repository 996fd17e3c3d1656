"""Admins' routes for API keys: issue (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import allow
from api.deps import ActorDep, IdempotentDep, fingerprinted
from api.errors import ERRORS
from api.queries import sent
from api.services import ServicesDep
from commands.handlers import run_once
from commands.keys import IssueKey, KeyName, RevokeKey, issue_key, revoke_key
from commands.messages import ProjectName
from queries.keys import keys_answer
from queries.messages import Position
from write_model.access import Action, Role

router = APIRouter(
    prefix="/api/v1/admin/keys",
    tags=["keys"],
    dependencies=[allow(Action.ADMINISTER)],
    responses=ERRORS,
)


class IssueKeyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "ci-bot", "role": "editor", "projects": ["fraud"]}],
            # An admin sees every project (IssueKey checks it): said here too.
            "if": {"properties": {"role": {"const": "admin"}}, "required": ["role"]},
            "then": {"properties": {"projects": {"type": "null"}}},
        },
    )

    name: KeyName = Field(description="who holds the key: the actor on the events it causes")
    role: Role
    projects: Annotated[list[ProjectName], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="the projects the key may see; omitted: every project"
    )


class IssuedKeyResponse(BaseModel):
    id: str
    name: str
    role: Role
    projects: list[str] | None
    key: str = Field(description="the key itself: shown in this answer only, never again")
    position: int | None


class KeyResponse(BaseModel):
    id: str
    name: str
    role: Role
    projects: list[str] | None
    issued_at: str
    issued_by: str
    revoked_at: str | None
    revoked_by: str | None
    active: bool


class KeyListResponse(BaseModel):
    items: list[KeyResponse]


class KeyRevokedResponse(BaseModel):
    id: str
    revoked: bool = Field(description="always true: the key no longer works")
    position: int | None = Field(description="global event position of the KeyRevoked event")


@router.post(
    "",
    status_code=201,
    response_model=IssuedKeyResponse,
    summary="Issue an API key (the key is in this answer only)",
)
def create_key(body: IssueKeyRequest, services: ServicesDep, ctx: ActorDep) -> JSONResponse:
    command = IssueKey(name=body.name, role=body.role, projects=body.projects)
    issued = issue_key(services.registry, command, ctx)
    key = issued.key
    return JSONResponse(
        {
            "id": str(key.id),
            "name": key.name,
            "role": key.role.value,
            "projects": key.projects,
            "key": issued.text,
            "position": issued.result.position,
        },
        status_code=201,
        headers={
            "Location": f"/api/v1/admin/keys/{key.id}",
            "X-Position": str(issued.result.position),
            "Cache-Control": "no-store",
        },
    )


@router.get("", response_model=KeyListResponse, summary="Every API key")
def get_keys(
    services: ServicesDep,
    include_revoked: Annotated[bool, Query(description="list revoked keys too")] = False,
    min_position: Annotated[Position | None, Query()] = None,
) -> Any:
    found = keys_answer(services.tables, include_revoked=include_revoked, min_position=min_position)
    return sent(found)


@router.delete(
    "/{key_id}",
    response_model=KeyRevokedResponse,
    summary="Revoke an API key: it stops working at once",
)
def delete_key(
    key_id: UUID, services: ServicesDep, ctx: IdempotentDep, request: Request
) -> JSONResponse:
    """With an Idempotency-Key, a retry after a lost answer answers as the first did."""
    ctx = fingerprinted(ctx, request, None)
    command = RevokeKey(key_id=key_id)
    result = run_once(services.registry, ctx, lambda: revoke_key(services.registry, command, ctx))
    if services.keyring is not None:
        services.keyring.forget(key_id)
    return JSONResponse(
        {"id": str(key_id), "revoked": True, "position": result.position},
        headers={"X-Position": str(result.position)},
    )
