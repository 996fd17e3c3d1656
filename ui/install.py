"""Mounting the web UI on the app (the composition root calls ``install``): its pages,
its static files, and how its requests that go wrong are answered: as pages, where the
API answers problem+json."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ui import actions, activity, model_pages, pages
from ui.access import FormRefused, SignInNeeded, in_the_background, sign_in_url, viewer
from ui.actions import Refused
from ui.rendering import HERE, from_htmx, page, said, said_in_place


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
        if in_the_background(request):  # a page's own reload: it leaves its rows be
            return Response(status_code=204)
        if from_htmx(request):
            return said_in_place(request, "Refused: the session has ended; sign in again.", 401)
        return RedirectResponse(sign_in_url(needed.back_to), status_code=303)

    @app.exception_handler(Refused)
    async def refused_command(request: Request, error: Refused) -> Response:
        if from_htmx(request):
            return said_in_place(request, f"Refused: {error.detail}", error.status)
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
            return said_in_place(request, f"Refused: {error}", 403)
        who = getattr(request.state, "viewer", None)
        return page(request, "problem.html", 403, who=who, problem=f"Refused: {error}")

    _pages_for_the_ui(app)


def _pages_for_the_ui(app: FastAPI) -> None:
    """A request under /ui that names no page or asks with malformed values (a model id
    that is not a UUID, a form field that is not a number) gets a page saying so; the
    API's handlers answer every other path as before."""
    api_invalid, api_http = (
        app.exception_handlers[RequestValidationError],
        app.exception_handlers[HTTPException],
    )

    async def invalid(request: Request, error: Exception) -> Response:
        if not _a_page(request) or not isinstance(error, RequestValidationError):
            return await _answered(api_invalid(request, error))
        who = getattr(request.state, "viewer", None)  # (set when the session was checked)
        return page(request, "problem.html", 422, who=who, problem=said(error))

    async def not_here(request: Request, error: Exception) -> Response:
        if not _a_page(request) or getattr(error, "status_code", None) != 404:
            return await _answered(api_http(request, error))
        problem = f"Nothing is at {request.url.path}."
        return page(request, "problem.html", 404, who=None, problem=problem)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, not_here)


def _a_page(request: Request) -> bool:
    path = request.url.path
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/static/")


async def _answered(answer: Response | Awaitable[Response]) -> Response:
    return await answer if inspect.isawaitable(answer) else answer
