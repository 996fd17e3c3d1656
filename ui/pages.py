"""The web UI's pages, server-rendered from the same readers and command handlers as the
REST API: sign-in and sign-out, the catalogue, the leaderboard and statistics; and
``install``, which mounts the UI (the composition root calls it)."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import orjson
from anyio import to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from api.auth import count_sign_in
from api.errors import RateLimited
from api.services import get_services
from commands.registry import CommandContext
from commands.sessions import end_session as recorded_end
from queries.messages import FACETS, ModelStatistics, SearchModels, TopPerforming
from ui.access import (
    ViewerDep,
    check_form,
    clear_cookie,
    correlation_of,
    keep_session,
    safe_next,
    same_origin,
)
from ui.actions import Refused
from ui.rendering import asked_of, page, refusal, said, same_with
from ui.sessions import Session, admin_mark, new_session_id
from write_model.access import Action, NotAuthenticated

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("", include_in_schema=False)
async def home() -> Response:
    return RedirectResponse("/ui/models", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", back_to=safe_next(next), problem=None)


@router.post("/login")
async def sign_in(
    request: Request,
    key: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """The key is checked as a Bearer key is; the session names its id, never its secret."""
    keyring, back_to = get_services(request).keyring, safe_next(next)
    same_origin(request)  # (another site may not sign a browser in with its own key)
    if keyring is None:
        return RedirectResponse(back_to, status_code=303)
    try:
        await count_sign_in(request)
        principal = await to_thread.run_sync(keyring.authenticate, key.strip())
    except (NotAuthenticated, RateLimited) as refused:
        status = 401 if isinstance(refused, NotAuthenticated) else 429
        return page(request, "login.html", status, back_to=back_to, problem=refused.detail)
    now, secret = int(time.time()), request.app.state.session_secret
    key_id = UUID(principal.key_id) if principal.key_id else None
    mark = admin_mark(secret, keyring.admin_key) if key_id is None and keyring.admin_key else ""
    response = RedirectResponse(back_to, status_code=303)
    keep_session(request, response, Session(key_id, now, now, new_session_id(), mark))
    return response


@router.post("/logout")
async def sign_out(
    request: Request, who: ViewerDep, form_token: Annotated[str | None, Form()] = None
) -> Response:
    """The session ends for good: recorded in the log, so a copy of its cookie opens
    nothing either, in any process."""
    check_form(request, who, form_token)
    keyring, session = get_services(request).keyring, who.session
    if keyring is not None:
        ctx = CommandContext(actor=who.principal.name, correlation_id=correlation_of(request))
        registry = get_services(request).registry
        end = partial(recorded_end, registry, session.id, session.key_id, session.began, ctx)
        try:
            await to_thread.run_sync(end)
        except Exception as error:  # the store is down: still signed in, and told so
            status, detail = refusal(error)
            problem = f"Signing out was not recorded: {detail}"
            return page(request, "problem.html", status, who=who, problem=problem)
        keyring.session_ends(session.id)
    response = RedirectResponse("/ui/login", status_code=303)
    clear_cookie(request, response)
    return response


@router.get("/models", response_class=HTMLResponse)
async def catalogue(request: Request, who: ViewerDep) -> Response:
    """Search and filters in the URL, so a view can be shared."""
    return await catalogue_page(request, who)


async def catalogue_page(request: Request, who: Any, refused: Refused | None = None) -> Response:
    """The catalogue; after a refused registration, with the form as it was sent and
    what the registry said of it."""
    asked = asked_of(request)
    asked["tag"] = [t for t in request.query_params.getlist("tag") if t]
    asked.setdefault("facets", ",".join(FACETS))
    try:
        query = SearchModels.model_validate(asked)
        answer = await get_services(request).catalogue.search(query, who.principal.visible_projects)
    except ValidationError as invalid:
        problem = said(invalid)
        return page(
            request, "catalogue.html", 422, who=who, asked=asked, found=None, problem=problem
        )
    except Exception as error:  # the API's error table says which
        status, detail = refusal(error)
        return page(
            request, "catalogue.html", status, who=who, asked=asked, found=None, problem=detail
        )
    found = orjson.loads(answer.body)
    cursor = found.get("next_cursor")
    return page(
        request,
        "catalogue.html",
        refused.status if refused else 200,
        who=who,
        asked=asked,
        found=found,
        problem=None,
        draft=refused.draft if refused else {},
        draft_problem=refused.detail if refused else None,
        next_url=same_with(request, cursor=cursor) if cursor else None,
        now_url=same_with(request, as_of=None, cursor=None),
        may_change=who.principal.may(Action.CHANGE),
    )


@router.get("/leaderboard", response_class=HTMLResponse)
async def leaderboard(request: Request, who: ViewerDep) -> Response:
    """Models ranked by a metric, in its direction (metric definitions)."""
    asked = asked_of(request)
    if "metric" not in asked:
        return page(request, "leaderboard.html", who=who, asked=asked, found=None, problem=None)
    return await _answered(request, who, "leaderboard.html", asked, TopPerforming, "top_performing")


@router.get("/statistics", response_class=HTMLResponse)
async def statistics(request: Request, who: ViewerDep) -> Response:
    asked = asked_of(request)
    return await _answered(request, who, "statistics.html", asked, ModelStatistics, "statistics")


async def _answered(
    request: Request,
    who: Any,
    template: str,
    asked: dict[str, Any],
    message: type[BaseModel],
    reader: str,
) -> Response:
    """A page showing one catalogue reader's answer to the question the URL asks."""
    try:
        query = message.model_validate(asked)
        read = getattr(get_services(request).catalogue, reader)
        answer = await read(query, who.principal.visible_projects)
    except ValidationError as invalid:
        return page(request, template, 422, who=who, asked=asked, found=None, problem=said(invalid))
    except Exception as error:  # the API's error table says which
        status, detail = refusal(error)
        return page(request, template, status, who=who, asked=asked, found=None, problem=detail)
    found = orjson.loads(answer.body)
    return page(request, template, who=who, asked=asked, found=found, problem=None)
