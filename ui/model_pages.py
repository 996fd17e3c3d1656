"""A model's pages in the web UI: its story (itself, its deployments over time, its
history with each update's changes, an editor's forms), two versions side by side, and
the rows of its timeline that its open page reloads as they change."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from api.services import get_services
from queries.messages import ListHistory
from ui.access import ViewerDep
from ui.rendering import moment_of, page, refusal, said, same_with
from ui.story import compared, with_diffs
from write_model.access import Action
from write_model.values import instant

router = APIRouter(prefix="/ui", include_in_schema=False)
HISTORY_SHOWN = 50  # events of a model's history on a page of it
VERSIONS_SHOWN = 20  # versions on a page of them


class Paging(BaseModel):
    """Which page of a model's versions (newest first) and of its history (the events
    before a position; none: the latest) the URL asks for."""

    model_config = ConfigDict(extra="ignore")
    versions: PositiveInt = 1
    history_before: PositiveInt | None = None


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
        as_of = moment_of(request.query_params.get("as_of"))
        paging = Paging.model_validate(dict(request.query_params))
        answer = await _model_at(request, model_id, visible, as_of)
        history = await to_thread.run_sync(whole_history, models, model_id, visible)
        served = await to_thread.run_sync(models.deployments, model_id, visible, None, as_of)
    except ValidationError as invalid:
        return page(request, "problem.html", 422, who=who, problem=said(invalid))
    except Exception as error:
        code, detail = refusal(error)
        return page(request, "problem.html", code, who=who, problem=detail)
    model, timeline = orjson.loads(answer.body), orjson.loads(served.body)["history"]
    events = [e for e in history if as_of is None or e["timestamp"] <= instant(as_of)]
    return page(
        request,
        "model.html",
        status,
        who=who,
        model=model,
        timeline=timeline,
        latest=events[-1]["position"] if events else 0,
        **_versions_page(request, model["versions"], paging.versions),
        **_history_page(request, with_diffs(events), paging.history_before),
        may_change=who.principal.may(Action.CHANGE) and as_of is None,  # (not the past)
        problem=problem,
    )


def _versions_page(request: Request, versions: list[Any], number: int) -> dict[str, Any]:
    """One page of the versions, newest first, and links to its neighbours."""
    start = (number - 1) * VERSIONS_SHOWN
    newest_first = versions[::-1]
    more = len(newest_first) > start + VERSIONS_SHOWN
    return {
        "versions_shown": newest_first[start : start + VERSIONS_SHOWN],
        "newer_versions": same_with(request, versions=str(number - 1)) if number > 1 else None,
        "older_versions": same_with(request, versions=str(number + 1)) if more else None,
    }


def _history_page(
    request: Request, events: list[dict[str, Any]], before: int | None
) -> dict[str, Any]:
    """The events before a position (each update as before -> after), newest first."""
    earlier = [e for e in events if before is None or e["position"] < before]
    shown = earlier[-HISTORY_SHOWN:]
    older = len(earlier) > len(shown)
    return {
        "history": shown[::-1],
        "older_history": same_with(request, history_before=str(shown[0]["position"]))
        if older
        else None,
        "newest_history": same_with(request, history_before=None) if before else None,
    }


async def _model_at(request: Request, model_id: UUID, visible: Any, as_of: Any) -> Any:
    """The model now (read-your-writes), or as it stood at ``as_of``."""
    models = get_services(request).models
    if as_of is None:
        return await to_thread.run_sync(models.current, model_id, visible, None)
    return await to_thread.run_sync(models.past, model_id, visible, None, as_of)


def whole_history(models: Any, model_id: UUID, visible: Any) -> list[dict[str, Any]]:
    """Every event of the model, page after page (the diffs fold from the first)."""
    items: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page_of = ListHistory(after=after, limit=1000)
        found = orjson.loads(models.history(model_id, visible, page_of).body)
        items += found["items"]
        after = found["next_after"]
    return items


@router.get("/models/{model_id}/compare", response_class=HTMLResponse)
async def compare(
    request: Request, model_id: UUID, who: ViewerDep, a: int = 1, b: int = 2
) -> Response:
    """Two versions of a model side by side: their metrics and training settings (as the
    model stood at ``as_of``, when the page asks)."""
    try:
        as_of = moment_of(request.query_params.get("as_of"))
        answer = await _model_at(request, model_id, who.principal.visible_projects, as_of)
    except ValidationError as invalid:
        return page(request, "problem.html", 422, who=who, problem=said(invalid))
    except Exception as error:
        code, detail = refusal(error)
        return page(request, "problem.html", code, who=who, problem=detail)
    model = orjson.loads(answer.body)
    side_by_side = compared(model, a, b)
    if side_by_side is None:
        problem = f"{model['name']} has no version {a} or no version {b}"
        return page(request, "problem.html", 404, who=who, problem=problem)
    return page(request, "compare.html", who=who, model=model, shown=side_by_side)


@router.get("/models/{model_id}/timeline", response_class=HTMLResponse)
async def timeline_rows(request: Request, model_id: UUID, who: ViewerDep) -> Response:
    """The rows of a model's deployments over time (its page refreshes them live)."""
    models, visible = get_services(request).models, who.principal.visible_projects
    served = await to_thread.run_sync(models.deployments, model_id, visible, None, None)
    timeline = orjson.loads(served.body)["history"]
    return page(request, "timeline_rows.html", who=who, timeline=timeline)
