"""The queries router (GET): the catalogue, search, statistics, leaderboards, versions,
deployments from the read model; a model at a version or time, and its history,
from the event log. Every answer carries ``X-Position``: the log position it reflects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar
from uuid import UUID

import orjson
from anyio import to_thread
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.auth import PrincipalDep, allow
from api.deps import LedgerDep
from api.errors import ERRORS
from api.schemas import HistoryResponse, ModelResponse
from modelledger.bootstrap import Ledger
from queries.catalogue import catalogue_view, model_row, model_versions
from queries.deployments import model_deployments
from queries.errors import ProjectionBehind
from queries.leaderboard import top_performing
from queries.messages import (
    GetModel,
    ModelStatistics,
    Moment,
    Position,
    SearchModels,
    TopPerforming,
)
from queries.models import get_model, model_history, model_view
from queries.past_statistics import statistics_as_of
from queries.reading import Snapshot
from queries.search import search_models
from queries.sources import is_settled, timeline_moment
from queries.statistics import model_statistics
from queries.visibility import Projects, ensure_visible
from read_model.encoding import json_bytes
from read_model.tables import (
    CATALOGUE_VERSION,
    DEPLOYMENTS_VERSION,
    TIMELINE_VERSION,
    VERSIONS_VERSION,
)
from write_model.access import Action, Principal
from write_model.errors import InvalidValue, ModelNotFound
from write_model.values import instant

router = APIRouter(prefix="/api/v1/models", tags=["queries"], dependencies=[allow(Action.READ)])

T = TypeVar("T")
FINAL = -1  # the "position" of answers about a past that can no longer change
MinPosition = Annotated[
    Position | None,
    Query(description="wait (bounded) until the answer includes this log position"),
]


def answer(body: Any, position: int, **headers: str) -> Response:
    return encoded(json_bytes(body), position, **headers)


def encoded(content: bytes, position: int, **headers: str) -> Response:
    return Response(
        content, media_type="application/json", headers={"X-Position": str(position), **headers}
    )


def from_catalogue(
    ledger: Ledger, min_position: int | None, read: Callable[[Snapshot], T]
) -> tuple[T, int]:
    with ledger.reading("catalogue", CATALOGUE_VERSION, min_position) as snapshot:
        return read(snapshot), snapshot.position


def visible_row(snapshot: Snapshot, model_id: UUID, caller: Principal) -> Any:
    row = model_row(snapshot, model_id)
    ensure_visible(row.project, caller.visible_projects, model_id)
    return row


def as_of_of(query: BaseModel) -> str | None:
    moment = getattr(query, "as_of", None)
    return timeline_moment(moment) if moment is not None else None


def read_timeline(
    ledger: Ledger, question: tuple[str, bytes], query: BaseModel, read: Callable[[Snapshot], Any]
) -> Response:
    """An answer as of a past time, from the timeline projection. Once the timeline
    has gone well past that time the answer can no longer change: it is kept."""
    as_of = as_of_of(query)
    assert as_of is not None
    min_position = getattr(query, "min_position", None)
    with ledger.reading("timeline", TIMELINE_VERSION, min_position) as snapshot:
        ledger.answers.note("timeline", snapshot.generation, snapshot.position)
        key = (snapshot.generation, FINAL, question)
        content = ledger.answers.recall(key)
        if content is None:
            content = json_bytes(read(snapshot))
            if is_settled(snapshot, as_of):
                ledger.answers.put(key, content)
        return encoded(content, snapshot.position)


async def cached_catalogue_answer(
    ledger: Ledger, query: BaseModel, visible: Projects, read: Callable[[Snapshot], Any]
) -> Response:
    """The catalogue's answer to ``query``: from the answer cache, on the event loop,
    when the projection was seen at a position within the last few milliseconds
    that satisfies ``min_position``; else read in a thread (and cached). Asked
    ``as_of`` a time, the timeline answers instead."""
    asked: dict[str, Any] = query.model_dump(exclude={"min_position"})
    # What the caller may see is part of the question: a scoped key's answer is its own.
    asked["visible"] = sorted(visible) if visible is not None else None
    question = (type(query).__name__, orjson.dumps(asked, option=orjson.OPT_SORT_KEYS))
    min_position: int | None = getattr(query, "min_position", None)
    if getattr(query, "as_of", None) is not None:
        timeline = ledger.answers.seen("timeline")
        if timeline is not None and (min_position is None or timeline.position >= min_position):
            content = ledger.answers.get((timeline.generation, FINAL, question))
            if content is not None:
                return encoded(content, timeline.position)
        return await to_thread.run_sync(read_timeline, ledger, question, query, read)
    seen = ledger.answers.seen("catalogue")
    if seen is not None and (min_position is None or seen.position >= min_position):
        content = ledger.answers.get((seen.generation, seen.position, question))
        if content is not None:
            return encoded(content, seen.position)
    return await to_thread.run_sync(read_catalogue, ledger, question, min_position, read)


def read_catalogue(
    ledger: Ledger,
    question: tuple[str, bytes],
    min_position: int | None,
    read: Callable[[Snapshot], Any],
) -> Response:
    with ledger.reading("catalogue", CATALOGUE_VERSION, min_position) as snapshot:
        ledger.answers.note("catalogue", snapshot.generation, snapshot.position)
        key = (snapshot.generation, snapshot.position, question)
        content = ledger.answers.recall(key)
        if content is None:
            content = json_bytes(read(snapshot))
            ledger.answers.put(key, content)
        return encoded(content, snapshot.position)


@router.get("", responses=ERRORS, summary="List and search the catalogue (the same as /search)")
@router.get("/search", responses=ERRORS, summary="Search the catalogue")
async def search(
    ledger: LedgerDep, caller: PrincipalDep, query: Annotated[SearchModels, Query()]
) -> Response:
    visible = caller.visible_projects
    return await cached_catalogue_answer(
        ledger,
        query,
        visible,
        lambda snapshot: search_models(snapshot, query, as_of_of(query), visible),
    )


@router.get("/statistics", responses=ERRORS, summary="Counts and metric distributions")
async def statistics(
    ledger: LedgerDep, caller: PrincipalDep, query: Annotated[ModelStatistics, Query()]
) -> Response:
    as_of, visible = as_of_of(query), caller.visible_projects
    return await cached_catalogue_answer(
        ledger,
        query,
        visible,
        lambda snapshot: (
            model_statistics(snapshot, query, visible)
            if as_of is None
            else statistics_as_of(snapshot, query, as_of, visible)
        ),
    )


@router.get(
    "/top-performing", responses=ERRORS, summary="Models ranked by their best version's metric"
)
async def leaderboard(
    ledger: LedgerDep, caller: PrincipalDep, query: Annotated[TopPerforming, Query()]
) -> Response:
    visible = caller.visible_projects
    return await cached_catalogue_answer(
        ledger,
        query,
        visible,
        lambda snapshot: top_performing(snapshot, query, as_of_of(query), visible),
    )


@router.get(
    "/{model_id}",
    response_model=ModelResponse,
    responses=ERRORS,
    summary="A model now (catalogue), at a version, or as it was at a time (event log)",
)
async def read_model(
    model_id: UUID,
    ledger: LedgerDep,
    caller: PrincipalDep,
    at_version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    as_of: Annotated[Moment | None, Query(description="RFC 3339 time with a zone")] = None,
    min_position: MinPosition = None,
) -> Response:
    if as_of is not None and at_version is not None:  # 422 naming as_of, as every bad as_of
        raise InvalidValue("ask for at_version or as_of, not both", field="query.as_of")
    if as_of is not None or at_version is not None:
        model, position = await to_thread.run_sync(
            lambda: get_model(
                ledger.event_log,
                model_id,
                at_version=at_version,
                as_of=as_of,
                visible=caller.visible_projects,
            )
        )
        return answer(model_view(model), position, ETag=f'"{model.version}"')
    return await current_model(ledger, model_id, caller, min_position)


async def current_model(
    ledger: Ledger,
    model_id: UUID,
    caller: Principal,
    min_position: int | None,
) -> Response:
    """The model as of every command on it acknowledged before this read, through any
    process: the log says which version that is (one indexed look-up), and only an
    answer at that version is given: the one this process holds, else the catalogue's
    once it has taken that change in, else (not yet) the model folded from the log."""
    version, changed_at = await to_thread.run_sync(last_change, ledger, model_id, caller)
    held = ledger.model_answers.answer(str(model_id), version, min_position or 0)
    if held is not None:
        kept, position = held
        ensure_visible(kept.project, caller.visible_projects, model_id)
        return encoded(kept.body, position, ETag=f'"{kept.version}"')
    seen = ledger.answers.seen("catalogue")
    if min_position is None and (seen is None or seen.position < changed_at):
        model, position = await to_thread.run_sync(
            lambda: get_model(ledger.event_log, model_id, visible=caller.visible_projects)
        )
        return answer(model_view(model), position, ETag=f'"{model.version}"')
    # Cached like search: a model read again at the same catalogue position is the same.
    response = await cached_catalogue_answer(
        ledger,
        GetModel(model_id=model_id, min_position=max(min_position or 0, changed_at)),
        caller.visible_projects,
        lambda snapshot: catalogue_view(visible_row(snapshot, model_id, caller)),
    )
    response.headers["ETag"] = f'"{orjson.loads(response.body)["version"]}"'
    return response


def last_change(ledger: Ledger, model_id: UUID, caller: Principal) -> tuple[int, int]:
    """The model's version and last position in the log (404 when it has none, or the
    caller may not see it: asked before any wait, so that a hidden model answers as
    soon, and in the same words, as an unknown one)."""
    last = ledger.last_change(model_id)
    if last is None:
        raise ModelNotFound(f"model {model_id} not found", field="model_id")
    if caller.visible_projects is not None:
        project = ledger.model_projects.project_of(model_id) or ""
        ensure_visible(project, caller.visible_projects, model_id)
    return last


def through_last_change(
    ledger: Ledger, model_id: UUID, caller: Principal, min_position: int | None
) -> int:
    """The position a read of one model's tables must reach: its last change, or later."""
    return max(min_position or 0, last_change(ledger, model_id, caller)[1])


@contextmanager
def waiting_for_the_change(
    model_id: UUID, min_position: int | None, at_least: int
) -> Iterator[None]:
    """Tables not yet at the model's last change: a 503 about that change, not about a
    ``min_position`` the caller never sent."""
    try:
        yield
    except ProjectionBehind as behind:
        if behind.field != "min_position" or (min_position or 0) >= at_least:
            raise
        raise ProjectionBehind(
            f"the tables have not yet taken in model {model_id}'s last change "
            f"(position {at_least}); retry shortly"
        ) from behind


@router.get(
    "/{model_id}/history",
    response_model=HistoryResponse,
    responses=ERRORS,
    summary="The audit trail: every event of the model",
)
def read_history(model_id: UUID, ledger: LedgerDep, caller: PrincipalDep) -> Response:
    items = model_history(ledger.event_log, model_id, caller.visible_projects)
    return answer({"id": str(model_id), "items": items}, items[-1]["position"])


@router.get("/{model_id}/versions", responses=ERRORS, summary="Every trained version")
def read_versions(
    model_id: UUID, ledger: LedgerDep, caller: PrincipalDep, min_position: MinPosition = None
) -> Response:
    at_least = through_last_change(ledger, model_id, caller, min_position)
    with waiting_for_the_change(model_id, min_position, at_least):
        _, known_at = from_catalogue(ledger, at_least, lambda s: visible_row(s, model_id, caller))
        with ledger.reading("versions", VERSIONS_VERSION, at_least) as snapshot:
            items = model_versions(snapshot, model_id)
    return answer({"id": str(model_id), "items": items}, min(known_at, snapshot.position))


@router.get(
    "/{model_id}/deployments",
    responses=ERRORS,
    summary="What each environment serves now, and the history of every environment",
)
def read_deployments(
    model_id: UUID,
    ledger: LedgerDep,
    caller: PrincipalDep,
    min_position: MinPosition = None,
    as_of: Annotated[Moment | None, Query(description="as the registry stood at this time")] = None,
) -> Response:
    at_least = through_last_change(ledger, model_id, caller, min_position)
    when = instant(as_of) if as_of is not None else None
    with waiting_for_the_change(model_id, min_position, at_least):
        _, known_at = from_catalogue(ledger, at_least, lambda s: visible_row(s, model_id, caller))
        with ledger.reading("deployments", DEPLOYMENTS_VERSION, at_least) as snapshot:
            found = model_deployments(snapshot, model_id, when)
    body = {"id": str(model_id), "as_of": when, **found}
    return answer(body, min(known_at, snapshot.position))
