"""Mounting the web UI on the app (the composition root calls ``install``): its pages,
its static files, and how its requests that go wrong are answered: as pages, where the
API answers problem+json."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ui import actions, activity, model_pages, pages
from ui.access import FormRefused, SignInNeeded, in_the_background, sign_in_url, viewer
from ui.actions import Refused
from ui.rendering import HERE, from_htmx, page, said_in_place


def install(app: FastAPI, secret: bytes) -> None:
    app.state.session_secret = secret
    app.include_router(pages.router)
    app.include_router(model_pages.router)
    app.include_router(activity.router)
    app.include_router(actions.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui", status_code=303)

    @app.exception_handler(SignInNeeded)
    async def to_sign_in(request: Request, needed: SignInNeeded) -> Response:
        if request.url.path.endswith("/stream"):  # an EventSource: it stops listening
            return Response(STREAM_ENDED, media_type="text/event-stream")
        if from_htmx(request):
            return _in_place(request, "the session has ended; sign in again.")
        return RedirectResponse(sign_in_url(needed.back_to), status_code=303)

    @app.exception_handler(Refused)
    async def refused_command(request: Request, error: Refused) -> Response:
        if from_htmx(request):
            return _in_place(request, error.detail)
        who = getattr(request.state, "viewer", None) or await viewer(request)
        if error.model_id is not None:
            return await model_pages.model_page(
                request, error.model_id, who, error.detail, error.status
            )
        if error.draft is not None:
            return await pages.catalogue_page(request, who, error)
        return page(request, "problem.html", error.status, who=who, problem=error.detail)

    @app.exception_handler(FormRefused)
    async def refused_form(request: Request, error: FormRefused) -> Response:
        if from_htmx(request):
            return _in_place(request, str(error))
        who = getattr(request.state, "viewer", None)
        return page(request, "problem.html", 403, who=who, problem=f"Refused: {error}")

    for kind, handler in list(app.exception_handlers.items()):
        if kind not in (SignInNeeded, Refused, FormRefused):
            app.add_exception_handler(kind, _in_the_uis_kind(handler))


STREAM_ENDED = "event: end\ndata: \n\n"  # (the pages' streams close on it: sse-close)


def _in_place(request: Request, detail: str) -> Response:
    """A refusal of an htmx request, for its page's status line; a page's own background
    reload says nothing and keeps what it shows."""
    if in_the_background(request):
        return Response(status_code=204)
    return said_in_place(request, f"Refused: {detail}")


def _in_the_uis_kind(handler: Callable[..., Any]) -> Callable[..., Awaitable[Response]]:
    """The API's error table answers the UI's requests too (one table), in the UI's kind:
    a page saying what went wrong (a model id that is not one, a page that is not there,
    too many requests), or a line of text for htmx; every other path as before."""

    async def answer(request: Request, error: Exception) -> Response:
        answered = handler(request, error)  # (a fault is logged here, once)
        answered = await answered if inspect.isawaitable(answered) else answered
        if not _a_page(request):
            return cast(Response, answered)
        detail = _detail_of(answered)
        if from_htmx(request):
            return _in_place(request, detail)
        who = getattr(request.state, "viewer", None)  # (set when the session was checked)
        shown = page(request, "problem.html", answered.status_code, who=who, problem=detail)
        if "retry-after" in answered.headers:
            shown.headers["Retry-After"] = answered.headers["retry-after"]
        return shown

    return answer


def _detail_of(answered: Response) -> str:
    """The problem document's words, with each field at fault."""
    try:
        problem = json.loads(bytes(answered.body))
    except ValueError:
        return "the request was refused"
    detail = str(problem.get("detail", ""))
    errors = [e for e in problem.get("errors") or [] if e.get("message") != detail]
    fields = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return f"{detail} ({fields})" if fields else detail


def _a_page(request: Request) -> bool:
    path = request.url.path
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/static/")
