"""Dependencies shared by the routers, as Annotated aliases.

They are async (no I/O) so FastAPI does not hop to a thread for each of them.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import WithJsonSchema

from api.auth import PrincipalDep
from api.errors import BadRequest
from api.observability import CORRELATION_ID, MAX_CORRELATION_ID, is_correlation_id
from api.services import get_services
from commands.idempotency import MAX_KEY_LENGTH, fingerprint
from commands.registry import CommandContext, IdempotencyRequest, ModelRegistry

_ETAG = re.compile(r'^\s*"?(\d{1,18})"?\s*$')
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")


async def get_registry(request: Request) -> ModelRegistry:
    return get_services(request).registry


def parse_if_match(value: str | None) -> int | None:
    """None for no precondition; 0 never matches (a weak tag, per RFC 9110's strong
    comparison for If-Match: our ETags are strong, so a weak one is stale)."""
    if value is None or value.strip() == "*":
        return None
    weak = value.strip().startswith("W/")
    match = _ETAG.match(value.strip()[2:] if weak else value)
    if match is None:
        raise BadRequest('If-Match must be an ETag like "3"', field="If-Match")
    return 0 if weak else int(match.group(1))


# The forms the service accepts, as the API's schema says them (a header is never null).
IfMatch = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "pattern": r'^(\*|(W/)?"?[0-9]{1,18}"?)$'}),
    Header(description='ETag of the model, e.g. "3"'),
]
IdempotencyKey = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "pattern": _KEY.pattern}),
    Header(description="retries with this key replay the first response"),
]
CorrelationId = Annotated[
    str | None,
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_CORRELATION_ID,
            "pattern": CORRELATION_ID.pattern,
        }
    ),
    Header(description="your id for this request: on its answer, its logs and its events"),
]


def correlation_of(request: Request, given: str | None) -> str:
    """The request's correlation id, as the observer set it (the one in its logs)."""
    if given is not None and not is_correlation_id(given):
        raise BadRequest(
            f"X-Correlation-ID must be 1-{MAX_CORRELATION_ID} visible ASCII characters "
            "(spaces between them)",
            field="X-Correlation-ID",
        )
    found: str | None = getattr(request.state, "correlation_id", None)
    return found or given or str(uuid.uuid4())


async def actor_context(
    request: Request, caller: PrincipalDep, x_correlation_id: CorrelationId = None
) -> CommandContext:
    """Who sends a command that takes no If-Match or Idempotency-Key (key management),
    and the projects it may change."""
    return CommandContext(
        actor=caller.name,
        projects=caller.visible_projects,
        correlation_id=correlation_of(request, x_correlation_id),
    )


async def command_context(
    request: Request,
    caller: PrincipalDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    x_correlation_id: CorrelationId = None,
) -> CommandContext:
    if idempotency_key is not None and not _KEY.match(idempotency_key):
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} visible ASCII characters",
            field="Idempotency-Key",
        )
    correlation = correlation_of(request, x_correlation_id)
    return CommandContext(
        actor=caller.name,
        projects=caller.visible_projects,
        correlation_id=correlation,
        expected_version=parse_if_match(if_match),
        # The fingerprint is filled in by the route, which knows the body.
        idempotency=IdempotencyRequest(idempotency_key, "") if idempotency_key else None,
    )


async def idempotent_context(
    request: Request,
    caller: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
    x_correlation_id: CorrelationId = None,
) -> CommandContext:
    """Who sends a command that takes an Idempotency-Key but no If-Match (an import,
    revoking a key, removing a metric's definition)."""
    return await command_context(request, caller, None, idempotency_key, x_correlation_id)


def fingerprinted(ctx: CommandContext, request: Request, body: Any) -> CommandContext:
    """The context with its Idempotency-Key tied to this very request (a key sent again
    with another request is refused)."""
    if ctx.idempotency is None:
        return ctx
    printed = fingerprint(request.method, request.url.path, body, ctx.sender)
    return dataclasses.replace(
        ctx, idempotency=dataclasses.replace(ctx.idempotency, fingerprint=printed)
    )


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
ContextDep = Annotated[CommandContext, Depends(command_context)]
ActorDep = Annotated[CommandContext, Depends(actor_context)]
IdempotentDep = Annotated[CommandContext, Depends(idempotent_context)]
