"""The queries router (GET): the catalogue, search, statistics, leaderboards, one model's
story. Each route asks one reader of queries/ and sends its encoded answer with
``X-Position``: the log position it reflects."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from anyio import to_thread
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.auth import PrincipalDep, allow
from api.errors import ERRORS
from api.query_schemas import (
    HistoryResponse,
    ModelDeploymentsResponse,
    ModelResponse,
    SearchResponse,
    StatisticsResponse,
    TopPerformingResponse,
    TrainingRunsResponse,
    TrainingRunView,
    VersionRecord,
    VersionsResponse,
)
from api.services import ServicesDep
from queries.answers import Answer
from queries.errors import InvalidQuery
from queries.messages import (
    ExactName,
    ListHistory,
    ModelStatistics,
    Moment,
    Position,
    SearchModels,
    Text,
    TopPerforming,
)
from queries.model_parts import ListTrainingRuns
from write_model.access import Action

router = APIRouter(
    prefix="/api/v1/models", tags=["queries"], dependencies=[allow(Action.READ)], responses=ERRORS
)

MinPosition = Annotated[
    Position | None,
    Query(
        description="the answer reflects at least this log position: a read of the tables "
        "waits (bounded) for it, a read of the log never needs to; past the log's end, refused"
    ),
]


def sent(answer: Answer) -> Response:
    """The answer's bytes as the reader encoded them (never validated nor encoded again):
    each route's ``response_model`` documents what they hold."""
    headers = {"X-Position": str(answer.position)}
    if answer.version is not None:
        headers["ETag"] = f'"{answer.version}"'
    return Response(answer.body, media_type="application/json", headers=headers)


@router.get(
    "",
    response_model=SearchResponse,
    summary="List and search the catalogue (the same as /search)",
)
@router.get("/search", response_model=SearchResponse, summary="Search the catalogue")
async def search(
    services: ServicesDep, caller: PrincipalDep, query: Annotated[SearchModels, Query()]
) -> Response:
    """Every word of `q` must match, as a prefix, in the name, description or tags (a `q`
    with nothing to search for, only spaces or ASCII punctuation, is a 422 naming `q`; leave
    `q` out to list every model). Filters combine; `tag` repeats, and all must match;
    archived models appear only with `status=archived`.

    `sort` is `name` (ascending by default), `created_at` or `updated_at` (newest first by
    default) or `metric` (needs `metric`; the model's best value, best first); `order`
    overrides. With `metric` and another sort, only models that report the metric are
    listed, and `min_value` / `max_value` bound their best value.

    Pages are keyset pages on (sort key, id): models written while you page are neither
    skipped nor repeated unless their own sort key changes. `next_cursor` is opaque, `null`
    on the last page, and works only with the sort and order it was made for (else a 422
    naming `cursor`). Hits are summaries; `GET /api/v1/models/{model_id}` gives everything.
    """
    return sent(await services.catalogue.search(query, caller.visible_projects))


@router.get(
    "/statistics",
    response_model=StatisticsResponse,
    summary="Counts and metric distributions",
)
async def statistics(
    services: ServicesDep, caller: PrincipalDep, query: Annotated[ModelStatistics, Query()]
) -> Response:
    return sent(await services.catalogue.statistics(query, caller.visible_projects))


@router.get(
    "/top-performing",
    response_model=TopPerformingResponse,
    summary="Models ranked by their best version's metric",
)
async def leaderboard(
    services: ServicesDep, caller: PrincipalDep, query: Annotated[TopPerforming, Query()]
) -> Response:
    return sent(await services.catalogue.top_performing(query, caller.visible_projects))


@router.get(
    "/by-name",
    response_model=ModelResponse,
    summary="A model by its project and name",
)
async def get_model_by_name(
    services: ServicesDep,
    caller: PrincipalDep,
    name: Annotated[ExactName, Query(description="exactly as registered (it may hold `/`)")],
    project: Annotated[Text, Query(description="the model's project")] = "default",
    min_position: MinPosition = None,
) -> Response:
    """Read-your-writes, as `GET /api/v1/models/{model_id}`: the model reflects every
    command on it acknowledged before the read. Names may hold `/` (the Hub's
    `org/model`), hence query parameters."""
    answer = await to_thread.run_sync(
        services.models.by_name, project, name, caller.visible_projects, min_position
    )
    return sent(answer)


@router.get(
    "/{model_id}",
    response_model=ModelResponse,
    summary="A model now (catalogue), at a version, or as it was at a time (event log)",
)
async def get_model(
    model_id: UUID,
    services: ServicesDep,
    caller: PrincipalDep,
    at_version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    as_of: Annotated[Moment | None, Query(description="RFC 3339 time with a zone")] = None,
    min_position: MinPosition = None,
) -> Response:
    visible = caller.visible_projects
    if as_of is not None and at_version is not None:  # 422 naming as_of, as every bad as_of
        raise InvalidQuery("ask for at_version or as_of, not both", field="query.as_of")
    if as_of is not None or at_version is not None:
        answer = await to_thread.run_sync(
            services.models.past, model_id, visible, at_version, as_of, min_position
        )
        return sent(answer)
    # One thread for the log's look-up and, on a miss, the tables.
    answer = await to_thread.run_sync(services.models.current, model_id, visible, min_position)
    return sent(answer)


@router.get(
    "/{model_id}/history",
    response_model=HistoryResponse,
    summary="The audit trail: every event of the model",
)
def get_history(
    model_id: UUID,
    services: ServicesDep,
    caller: PrincipalDep,
    query: Annotated[ListHistory, Query()],
) -> Response:
    """Paged like the event feed: `after` a position, at most `limit` events, and
    `next_after` for the next page. Read from the log, so it reflects every change to
    the model acknowledged before the read."""
    return sent(services.models.history(model_id, caller.visible_projects, query))


@router.get(
    "/{model_id}/versions", response_model=VersionsResponse, summary="Every trained version"
)
def get_versions(
    model_id: UUID,
    services: ServicesDep,
    caller: PrincipalDep,
    tag: Annotated[
        list[Text], Query(max_length=20, description="only versions with every one of these")
    ] = [],  # noqa: B006 (FastAPI copies the default; it is never changed)
    min_position: MinPosition = None,
) -> Response:
    visible = caller.visible_projects
    return sent(services.models.versions(model_id, visible, min_position, tag))


@router.get(
    "/{model_id}/versions/{number}", response_model=VersionRecord, summary="One trained version"
)
def get_version(
    model_id: UUID,
    number: Annotated[int, Path(ge=1, le=10**9)],
    services: ServicesDep,
    caller: PrincipalDep,
    min_position: MinPosition = None,
) -> Response:
    visible = caller.visible_projects
    return sent(services.models.version(model_id, number, visible, min_position))


@router.get(
    "/{model_id}/training-runs",
    response_model=TrainingRunsResponse,
    summary="The model's training runs, in the order they started",
)
def get_training_runs(
    model_id: UUID,
    services: ServicesDep,
    caller: PrincipalDep,
    query: Annotated[ListTrainingRuns, Query()],
) -> Response:
    """Paged like the history (`after` the run the page before ended with, `limit`,
    `next_after`), and filtered by `state`. Read as the model is: every command on it
    acknowledged before the read shows, with no position passed."""
    return sent(services.models.training_runs(model_id, caller.visible_projects, query))


@router.get(
    "/{model_id}/training-runs/{run_id}",
    response_model=TrainingRunView,
    summary="One training run",
)
def get_training_run(
    model_id: UUID,
    run_id: Annotated[str, Path(max_length=200)],
    services: ServicesDep,
    caller: PrincipalDep,
    min_position: MinPosition = None,
) -> Response:
    visible = caller.visible_projects
    return sent(services.models.training_run(model_id, run_id, visible, min_position))


@router.get(
    "/{model_id}/deployments",
    response_model=ModelDeploymentsResponse,
    summary="What each environment serves now, and the history of every environment",
)
def get_deployments(
    model_id: UUID,
    services: ServicesDep,
    caller: PrincipalDep,
    min_position: MinPosition = None,
    as_of: Annotated[Moment | None, Query(description="as the registry stood at this time")] = None,
) -> Response:
    visible = caller.visible_projects
    return sent(services.models.deployments(model_id, visible, min_position, as_of))
