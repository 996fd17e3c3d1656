"""Authentication and authorisation at the HTTP boundary.

``principal`` turns ``Authorization: Bearer <key>`` into the principal it
stands for (and spends one of that key's rate-limit tokens); ``allow(action)``
is the dependency a router adds to demand a role. Failed attempts spend the
client address's tokens, which slows guessing down.
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Request

from api.rate_limit import RateLimiter, enforce
from commands.keyring import KeyRing
from write_model.access import ANONYMOUS_ADMIN, Action, Principal
from write_model.errors import NotAuthenticated, NotPermitted

BEARER = "bearer "


async def principal(request: Request) -> Principal:
    keyring: KeyRing | None = request.app.state.keyring
    if keyring is None:  # MODELLEDGER_AUTH=off
        return ANONYMOUS_ADMIN
    limits: RateLimiter = request.app.state.rate_limits
    header = request.headers.get("authorization")
    try:
        if header is None or not header[: len(BEARER)].lower() == BEARER:
            raise NotAuthenticated(
                "send an API key: Authorization: Bearer <key>", field="Authorization"
            )
        text = header[len(BEARER) :].strip()
        found = keyring.cached(text)
        if found is None:
            found = await to_thread.run_sync(keyring.authenticate, text)
    except NotAuthenticated:
        client = request.client.host if request.client else "unknown"
        await enforce(limits, f"client:{client}", "this address")
        raise
    await enforce(limits, f"key:{found.key_id or found.name}", "this key")
    return found


PrincipalDep = Annotated[Principal, Depends(principal)]


def allow(action: Action) -> Any:
    """A router dependency: the caller's role must permit ``action``."""

    async def permitted(caller: PrincipalDep) -> None:
        if not caller.may(action):
            raise NotPermitted(
                f"the {caller.role} role may not {action.value} here", field="Authorization"
            )

    return Depends(permitted)
