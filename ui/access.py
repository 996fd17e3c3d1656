"""Who is looking at a page: the session's key, checked on every request as the API
checks a Bearer key (its role and projects apply alike), and the form token and origin
every state-changing form is checked for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.responses import Response

from api.auth import count_request
from api.services import get_services
from ui.sessions import COOKIE, LONGEST, Session, admin_mark, opened, renewed, sealed, token_holds
from write_model.access import ANONYMOUS_ADMIN, NotAuthenticated, Principal

LOGIN = "/ui/login"


class SignInNeeded(Exception):
    """No session in force: the browser goes to the sign-in form, and back after."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class FormRefused(Exception):
    """A form post without this session's token, or from another origin."""


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    session: Session
    secret: bytes


def secret_of(request: Request) -> bytes:
    secret: bytes = request.app.state.session_secret
    return secret


async def viewer(request: Request) -> Viewer:
    secret, keyring = secret_of(request), get_services(request).keyring
    if keyring is None:  # MODELLEDGER_AUTH=off: everyone is the anonymous admin
        return Viewer(ANONYMOUS_ADMIN, Session(None, 0, 0, ""), secret)
    session = opened(secret, request.cookies.get(COOKIE))
    if session is None or not _current_admin(secret, session, keyring.admin_key):
        raise SignInNeeded(_here(request))
    try:
        principal = await to_thread.run_sync(keyring.holder, session.key_id, session.id)
    except NotAuthenticated:
        raise SignInNeeded(_here(request)) from None
    await count_request(request, principal)  # a page costs what an API request costs
    if not in_the_background(request):  # (a page left open is not a user at work)
        request.state.renewed_session = renewed(session)
    found = request.state.viewer = Viewer(principal, session, secret)  # (its error pages)
    return found


BACKGROUND = "x-modelledger-background"  # what the pages' scripts send on their own


def in_the_background(request: Request) -> bool:
    """A request a page's script makes by itself (a live stream, a reload of rows): it
    does not count as use, so a page left open still ends its session when idle."""
    return request.headers.get(BACKGROUND) == "1" or request.url.path.endswith("/stream")


def _current_admin(secret: bytes, session: Session, admin_key: str | None) -> bool:
    """A session of the environment's admin key holds while that very key is set."""
    if session.key_id is not None:
        return True
    return admin_key is not None and session.admin_mark == admin_mark(secret, admin_key)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


def sign_in_url(back_to: str) -> str:
    return f"{LOGIN}?next={quote(back_to, safe='')}"


def safe_next(candidate: str | None) -> str:
    """Where to go after signing in: a page of the UI on this origin, else the catalogue."""
    if not candidate or "\\" in candidate or not candidate.startswith(("/ui/", "/ui?")):
        return "/ui/models"
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or candidate.startswith("//"):
        return "/ui/models"
    return candidate


def check_form(request: Request, who: Viewer, token: str | None) -> None:
    """A state-changing form: this session's token, sent from this origin."""
    same_origin(request)
    if not token_holds(who.secret, who.session, token):
        raise FormRefused("the form's token is missing or not this session's")


def same_origin(request: Request) -> None:
    """The form came from a page of this site: its Origin (else Referer) names the host
    the request was sent to (the scheme is left out: behind a TLS proxy this process
    sees http where the browser saw https)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        origin = request.headers.get("referer")
    host = request.headers.get("host")
    if origin is None or host is None or urlsplit(origin).netloc != host:
        raise FormRefused("the form was not sent from this site")


def served_over_https(request: Request) -> bool:
    """Whether the browser reached us over https (itself, or through a TLS proxy that
    says so: trusting it can only add Secure to the cookie)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"


def keep_session(request: Request, response: Response, session: Session | None = None) -> None:
    """Write the session cookie (a new session, or one renewed as it was used)."""
    session = session or getattr(request.state, "renewed_session", None)
    if session is None:
        return
    response.set_cookie(
        COOKIE,
        sealed(secret_of(request), session),
        max_age=LONGEST,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=served_over_https(request),
    )


def correlation_of(request: Request) -> str:
    """The request's id (in its logs), for the events it causes."""
    found = getattr(request.state, "correlation_id", None)
    return str(found) if found else str(uuid.uuid4())


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/ui", httponly=True, samesite="strict", secure=served_over_https(request)
    )
