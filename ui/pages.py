"""The web UI's pages, server-rendered from the same readers and command handlers as the
REST API: sign-in and sign-out, the catalogue, a model's story."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from functools import cache
from html import escape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import orjson
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.auth import count_sign_in
from api.errors import RateLimited, status_for
from api.services import MAX_STREAMS_PER_KEY, STREAM_POLL_SECONDS, get_services
from queries.events import FeedView, list_events
from queries.messages import (
    FACETS,
    ListEvents,
    ListHistory,
    ModelStatistics,
    Moment,
    SearchModels,
    TopPerforming,
)
from ui import actions
from ui.access import (
    FormRefused,
    SignInNeeded,
    ViewerDep,
    check_form,
    end_session,
    keep_session,
    safe_next,
    same_origin,
    sign_in_url,
    viewer,
)
from ui.actions import Refused
from ui.sessions import Session, admin_mark, form_token
from write_model.access import Action, NotAuthenticated
from write_model.values import instant

HERE = Path(__file__).parent
router = APIRouter(prefix="/ui", include_in_schema=False)


@cache  # (one environment: its templates are compiled once)
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=HERE / "templates")


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    who = context.get("who")
    if who is not None:
        context["form_token"] = form_token(who.secret, who.session)
    response = templates().TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # (a key's view: not for the back button)
    keep_session(request, response)
    return response


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
    keep_session(request, response, Session(key_id, now, now, mark))
    return response


@router.post("/logout")
async def sign_out(
    request: Request, who: ViewerDep, form_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form(request, who, form_token)
    response = RedirectResponse("/ui/login", status_code=303)
    end_session(request, response)
    return response


@router.get("/models", response_class=HTMLResponse)
async def catalogue(request: Request, who: ViewerDep) -> Response:
    """Search and filters in the URL, so a view can be shared."""
    asked: dict[str, Any] = {k: v for k, v in request.query_params.items() if v != ""}
    asked["tag"] = [t for t in request.query_params.getlist("tag") if t]
    asked.setdefault("facets", ",".join(FACETS))
    try:
        query = SearchModels.model_validate(asked)
        answer = await get_services(request).catalogue.search(query, who.principal.visible_projects)
    except ValidationError as invalid:
        problem = _said(invalid)
        return page(
            request, "catalogue.html", 422, who=who, asked=asked, found=None, problem=problem
        )
    except Exception as error:  # the API's error table says which
        status = status_for(error)[0]
        if status >= 500 and status != 503:
            raise
        detail = getattr(error, "detail", str(error))
        return page(
            request, "catalogue.html", status, who=who, asked=asked, found=None, problem=detail
        )
    found = orjson.loads(answer.body)
    cursor = found.get("next_cursor")
    return page(
        request,
        "catalogue.html",
        who=who,
        asked=asked,
        found=found,
        problem=None,
        next_url=_same_with(request, cursor=cursor) if cursor else None,
        now_url=_same_with(request, as_of=None, cursor=None),
        may_change=who.principal.may(Action.CHANGE),
    )


def _same_with(request: Request, **changes: str | None) -> str:
    """This page's URL with some parameters changed (None: left out)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes and v]
    kept += [(k, v) for k, v in changes.items() if v is not None]
    return f"{request.url.path}?{urlencode(kept)}"


@router.get("/leaderboard", response_class=HTMLResponse)
async def leaderboard(request: Request, who: ViewerDep) -> Response:
    """Models ranked by a metric, in its direction (metric definitions)."""
    asked = _asked(request)
    if "metric" not in asked:
        return page(request, "leaderboard.html", who=who, asked=asked, found=None, problem=None)
    return await _answered(request, who, "leaderboard.html", asked, TopPerforming, "top_performing")


@router.get("/statistics", response_class=HTMLResponse)
async def statistics(request: Request, who: ViewerDep) -> Response:
    asked = _asked(request)
    return await _answered(request, who, "statistics.html", asked, ModelStatistics, "statistics")


def _asked(request: Request) -> dict[str, Any]:
    return {k: v for k, v in request.query_params.items() if v != ""}


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
        return page(
            request, template, 422, who=who, asked=asked, found=None, problem=_said(invalid)
        )
    except Exception as error:  # the API's error table says which
        status = status_for(error)[0]
        if status >= 500 and status != 503:
            raise
        detail = getattr(error, "detail", str(error))
        return page(request, template, status, who=who, asked=asked, found=None, problem=detail)
    found = orjson.loads(answer.body)
    return page(request, template, who=who, asked=asked, found=found, problem=None)


def _moment(text: str | None) -> datetime | None:
    """An ``as_of`` of the URL, read as the API reads one (RFC 3339, with a zone)."""
    return None if not text else MOMENT.validate_python(text)


MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def _said(invalid: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())


@router.get("/models/{model_id}", response_class=HTMLResponse)
async def model_story(request: Request, model_id: UUID, who: ViewerDep) -> Response:
    return await model_page(request, model_id, who)


async def model_page(
    request: Request, model_id: UUID, who: Any, problem: str | None = None, status: int = 200
) -> Response:
    """A model's page: itself, its deployments over time, its history; and, for an
    editor, the forms that change it (with what a refused one was told)."""
    models, visible = get_services(request).models, who.principal.visible_projects
    try:
        as_of = _moment(request.query_params.get("as_of"))
        if as_of is None:
            answer = await to_thread.run_sync(models.current, model_id, visible, None)
        else:
            answer = await to_thread.run_sync(models.past, model_id, visible, None, as_of)
        history = await to_thread.run_sync(models.history, model_id, visible, ListHistory(limit=50))
        served = await to_thread.run_sync(models.deployments, model_id, visible, None, as_of)
    except ValidationError as invalid:
        return page(request, "missing.html", 422, who=who, problem=_said(invalid))
    except Exception as error:
        code = status_for(error)[0]
        if code >= 500 and code != 503:
            raise
        return page(request, "missing.html", code, who=who, problem=getattr(error, "detail", ""))
    model, trail = orjson.loads(answer.body), orjson.loads(history.body)
    timeline = orjson.loads(served.body)["history"]
    events = [e for e in trail["items"] if as_of is None or e["timestamp"] <= instant(as_of)]
    return page(
        request,
        "model.html",
        status,
        who=who,
        model=model,
        history=events,
        timeline=timeline,
        may_change=who.principal.may(Action.CHANGE) and as_of is None,  # (not the past)
        problem=problem,
    )


@router.get("/models/{model_id}/timeline", response_class=HTMLResponse)
async def timeline_rows(request: Request, model_id: UUID, who: ViewerDep) -> Response:
    """The rows of a model's deployments over time (its page refreshes them live)."""
    models, visible = get_services(request).models, who.principal.visible_projects
    served = await to_thread.run_sync(models.deployments, model_id, visible, None, None)
    timeline = orjson.loads(served.body)["history"]
    return page(request, "timeline_rows.html", who=who, timeline=timeline)


@router.get("/activity", response_class=HTMLResponse)
async def activity(request: Request, who: ViewerDep) -> Response:
    """The event feed, filtered by model, type and actor (as the API's feed)."""
    services, asked = get_services(request), _asked(request)
    asked["type"] = [t for t in request.query_params.getlist("type") if t]
    asked.setdefault("limit", 50)
    live = len(asked) == 2 and not asked["type"]  # no filter, no moment: the latest, live
    if live:
        head = await to_thread.run_sync(services.event_log.head)
        asked["after"] = max(0, head - 50)
    if "as_of" in asked:  # the feed up to that moment
        asked["until"] = asked.pop("as_of")
    try:
        query = ListEvents.model_validate(asked)
    except ValidationError as invalid:
        return page(
            request, "activity.html", 422, who=who, asked=asked, found=None, problem=_said(invalid)
        )
    view = FeedView(
        who.principal.visible_projects,
        who.principal.may(Action.ADMINISTER),
        services.model_projects,
    )
    found = await to_thread.run_sync(list_events, services.event_log, query, view)
    more = None if found.at_head else _same_with(request, after=str(found.next_after))
    return page(
        request,
        "activity.html",
        who=who,
        asked=asked,
        found=found.body(),
        problem=None,
        next_url=more,
        live=live and found.at_head,
    )


@router.get("/activity/stream", response_class=EventSourceResponse)
async def activity_stream(
    request: Request, who: ViewerDep, after: int = 0, model_id: UUID | None = None
) -> AsyncIterator[ServerSentEvent]:
    """The activity page's live feed: events after ``after`` as they are stored, for as
    long as the session's key holds (the page's script shows them)."""
    services, principal = get_services(request), who.principal
    streams = services.open_streams
    if streams[principal.name] >= MAX_STREAMS_PER_KEY:
        raise Refused(429, f"this key has {MAX_STREAMS_PER_KEY} streams open already")
    view = FeedView(
        principal.visible_projects, principal.may(Action.ADMINISTER), services.model_projects
    )
    keyring, streams[principal.name] = services.keyring, streams[principal.name] + 1
    try:
        while True:
            query = ListEvents(after=after, limit=100, model_id=model_id)
            page = await to_thread.run_sync(list_events, services.event_log, query, view)
            if keyring is not None:  # a revoked key's stream ends
                try:
                    await to_thread.run_sync(keyring.holder, who.session.key_id)
                except NotAuthenticated:
                    return
            for item, text in page.texts():
                yield ServerSentEvent(id=str(item["position"]), event="change", raw_data=text)
            after = page.next_after
            if page.at_head:
                await asyncio.sleep(STREAM_POLL_SECONDS)
    finally:
        streams[principal.name] -= 1


def install(app: FastAPI, secret: bytes) -> None:
    """Mount the UI (the composition root calls it): its pages, static files, and the
    sign-in redirect."""
    app.state.session_secret = secret
    app.include_router(router)
    app.include_router(actions.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui", status_code=303)

    @app.exception_handler(SignInNeeded)
    async def to_sign_in(request: Request, needed: SignInNeeded) -> Response:
        return RedirectResponse(sign_in_url(needed.back_to), status_code=303)

    @app.exception_handler(Refused)
    async def refused_command(request: Request, error: Refused) -> Response:
        who = await viewer(request)
        if error.model_id is not None:
            return await model_page(request, error.model_id, who, error.detail, error.status)
        return page(request, "missing.html", error.status, who=who, problem=error.detail)

    @app.exception_handler(FormRefused)
    async def refused(request: Request, error: FormRefused) -> Response:
        return HTMLResponse(f"<p>Refused: {escape(str(error))}</p>", status_code=403)
