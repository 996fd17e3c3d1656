"""Authentication and authorisation at the HTTP boundary.

``principal`` turns ``Authorization: Bearer <key>`` into the principal it
stands for (and spends one of that key's rate-limit tokens); ``allow(action)``
is the dependency a router adds to demand a role. Failed attempts spend the
client address's tokens, which slows guessing down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.rate_limit import enforce
from api.services import get_services
from write_model.access import ANONYMOUS_ADMIN, Action, NotAuthenticated, NotPermitted, Principal

# Declares the scheme in the OpenAPI document (the docs' "Authorize" button) and reads
# the header; without auto_error, a missing or malformed one gets our 401 problem.
BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    bearerFormat="API key",
    description="An API key: `Authorization: Bearer <key>` (`modelledger keys create`, or "
    "`var/admin.key` on a fresh `serve`).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)]


async def principal(request: Request, credentials: Credentials) -> Principal:
    services = get_services(request)
    keyring = services.keyring
    if keyring is None:  # MODELLEDGER_AUTH=off
        return ANONYMOUS_ADMIN
    limits = services.rate_limits
    # What memory cannot answer costs a store read: it is counted against the client's
    # address first, so guessing keys is slowed down before it makes any work.
    address = client_address(request)
    try:
        text = key_text(credentials)
        found = keyring.cached(text)
    except NotAuthenticated:
        await enforce(limits, address, "this address")
        raise
    if found is None:
        await enforce(limits, address, "this address")
        found = await to_thread.run_sync(keyring.authenticate, text)
    await enforce(limits, f"key:{found.key_id or found.name}", "this key")
    return found


def client_address(request: Request) -> str:
    return f"client:{request.client.host if request.client else 'unknown'}"


async def count_sign_in(request: Request) -> None:
    """A sign-in attempt (the web UI's form) spends one of the client address's tokens,
    as a failed Bearer key does: guessing keys through the form is no faster."""
    await enforce(get_services(request).rate_limits, client_address(request), "this address")


async def count_request(request: Request, caller: Principal) -> None:
    """A request of a signed-in key (the web UI's pages) spends one of its tokens."""
    limits = get_services(request).rate_limits
    await enforce(limits, f"key:{caller.key_id or caller.name}", "this key")


def key_text(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise NotAuthenticated(
            "send an API key: Authorization: Bearer <key>", field="Authorization"
        )
    return credentials.credentials.strip()


PrincipalDep = Annotated[Principal, Depends(principal)]


@dataclass(frozen=True)
class Permission:
    """The caller's role must permit ``action`` (api.openapi reads it: which operations
    may answer 403)."""

    action: Action

    async def __call__(self, caller: PrincipalDep) -> None:
        if not caller.may(self.action):
            raise NotPermitted(
                f"the {caller.role} role may not {self.action.value} here", field="Authorization"
            )


def allow(action: Action) -> Any:
    """A router dependency: the caller's role must permit ``action``."""
    return Depends(Permission(action))
