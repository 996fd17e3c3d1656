"""How the web UI's pages are made: the templates, the answer with the session kept,
and the readings of a URL that several pages share."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError

from api.errors import status_for
from queries.messages import Moment
from ui.access import keep_session
from ui.sessions import form_token

HERE = Path(__file__).parent


@cache  # (one environment: its templates are compiled once)
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=HERE / "templates")


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    who = context.get("who")
    if who is not None:
        context["form_token"] = form_token(who.secret, who.session)
    context.setdefault("status", status_code)
    response = templates().TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # (a key's view: not for the back button)
    keep_session(request, response)
    return response


def said_in_place(request: Request, text: str) -> Response:
    """What a form that stays on its page (sent by htmx) shows in its status line: a 200
    whether it was done or refused (htmx swaps in 2xx answers only; the words say which)."""
    response = HTMLResponse(escape(text, quote=False), headers={"Cache-Control": "no-store"})
    keep_session(request, response)
    return response


def from_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def same_with(request: Request, **changes: str | None) -> str:
    """This page's URL with some parameters changed (None: left out)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes and v]
    kept += [(k, v) for k, v in changes.items() if v is not None]
    return f"{request.url.path}?{urlencode(kept)}"


def asked_of(request: Request) -> dict[str, Any]:
    return {k: v for k, v in request.query_params.items() if v != ""}


def moment_of(text: str | None) -> datetime | None:
    """An ``as_of`` of the URL, read as the API reads one (RFC 3339, with a zone)."""
    return None if not text else MOMENT.validate_python(text)


MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def said(invalid: ValidationError | RequestValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())


def refusal(error: Exception) -> tuple[int, str]:
    """The status and words the API's error table gives ``error``; a fault is raised on
    (it is the error handlers' to answer, as a 500)."""
    status = status_for(error)[0]
    if status >= 500 and status != 503:
        raise error
    return status, getattr(error, "detail", str(error))
