"""The root fields: each builds the message the REST route builds, asks the same reader,
and reads its encoded answer, so GraphQL answers what REST answers. Each notes the
position its data reflects (``extensions.positions``)."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias
from uuid import UUID

import strawberry
from pydantic import BaseModel, ConfigDict, Field
from strawberry.types import Info

from api.events import feed_view
from api.graphql.connections import (
    EventConnection,
    Leaderboard,
    ModelConnection,
    RankedModel,
    ServingConnection,
    ServingItem,
    events_page,
)
from api.graphql.context import (
    GraphContext,
    InvalidArgument,
    decoded,
    in_thread,
    message,
    or_none,
    reflected,
)
from api.graphql.model import Model
from api.graphql.types import MetricDefinition, Statistics, Time
from queries.messages import (
    ExactName,
    ListDeployments,
    ListEvents,
    ModelStatistics,
    Moment,
    Position,
    SearchModels,
    Text,
    TopPerforming,
)
from queries.metric_definitions import ListMetricDefinitions
from queries.reading import within_the_log

Ctx: TypeAlias = Info[GraphContext, Any]
MIN_POSITION = "the answer reflects at least this log position (REST's min_position)"
AS_OF = "as the registry stood at this time (RFC 3339, with a zone)"


class OneModel(BaseModel):
    """The arguments of ``model``, checked as REST checks its path and query."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: UUID
    as_of: Moment | None = None
    at_version: Annotated[int, Field(ge=1, le=10**9)] | None = None
    min_position: Position | None = None


class ByName(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    project: Text = "default"
    name: ExactName
    min_position: Position | None = None


@strawberry.type
class Query:
    @strawberry.field(
        description="one model now (read-your-writes), at a version, or as of a "
        "time; null: no such model, or one the key may not see"
    )
    async def model(
        self,
        info: Ctx,
        id: strawberry.ID,
        as_of: Annotated[Time | None, strawberry.argument(description=AS_OF)] = None,
        at_version: int | None = None,
        min_position: Annotated[int | None, strawberry.argument(description=MIN_POSITION)] = None,
    ) -> Model | None:
        asked = message(
            OneModel,
            id=id,
            as_of=as_of,
            at_version=at_version,
            min_position=min_position,
        )
        if asked.as_of is not None and asked.at_version is not None:
            raise InvalidArgument("ask for atVersion or asOf, not both", "asOf")
        models, visible = info.context.services.models, info.context.visible
        if asked.as_of is None and asked.at_version is None:
            answer = await or_none(
                info.context, models.current, asked.id, visible, asked.min_position
            )
        else:
            answer = await or_none(
                info.context,
                models.past,
                asked.id,
                visible,
                asked.at_version,
                asked.as_of,
                asked.min_position,
            )
        if answer is None:
            return None
        reflected(info, answer.position)
        # Its parts read now (at a version: its deployments) reflect its last change, as
        # REST's reads of them do, not only the version asked for.
        seen_at = answer.position
        if asked.at_version is not None:
            last = await in_thread(info.context, models.last_change, asked.id, visible)
            seen_at = max(seen_at, last[1])
        return Model(data=decoded(answer.body), seen_at=seen_at, as_of=asked.as_of, whole=True)

    @strawberry.field(description="a model by its project and exact name (read-your-writes)")
    async def model_by_name(
        self, info: Ctx, name: str, project: str = "default", min_position: int | None = None
    ) -> Model | None:
        asked = message(
            ByName,
            project=project,
            name=name,
            min_position=min_position,
        )
        models, visible = info.context.services.models, info.context.visible
        answer = await or_none(
            info.context, models.by_name, asked.project, asked.name, visible, asked.min_position
        )
        if answer is None:
            return None
        reflected(info, answer.position)
        return Model(data=decoded(answer.body), seen_at=answer.position, as_of=None, whole=True)

    @strawberry.field(
        description="search and list the catalogue, a page at a time (REST's "
        "GET /api/v1/models/search)"
    )
    async def models(
        self,
        info: Ctx,
        q: str | None = None,
        name: str | None = None,
        project: str | None = None,
        task: str | None = None,
        framework: str | None = None,
        status: str | None = None,
        tags: list[str] | None = None,
        owner: str | None = None,
        environment: str | None = None,
        metric: str | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        sort: str | None = None,
        order: str | None = None,
        first: int | None = None,
        after: str | None = None,
        as_of: Annotated[Time | None, strawberry.argument(description=AS_OF)] = None,
        min_position: Annotated[int | None, strawberry.argument(description=MIN_POSITION)] = None,
    ) -> ModelConnection:
        query = message(
            SearchModels,
            q=q,
            name=name,
            project=project,
            task=task,
            framework=framework,
            status=status,
            tag=tags,
            owner=owner,
            environment=environment,
            metric=metric,
            min_value=min_value,
            max_value=max_value,
            sort=sort,
            order=order,
            limit=first,
            cursor=after,
            as_of=as_of,
            min_position=min_position,
        )
        answer = await info.context.services.catalogue.search(query, info.context.visible)
        reflected(info, answer.position)
        return ModelConnection.of(decoded(answer.body), answer.position, query.as_of)

    @strawberry.field(description="counts and metric distributions")
    async def statistics(
        self,
        info: Ctx,
        project: str | None = None,
        task: str | None = None,
        as_of: Annotated[Time | None, strawberry.argument(description=AS_OF)] = None,
        min_position: Annotated[int | None, strawberry.argument(description=MIN_POSITION)] = None,
    ) -> Statistics:
        query = message(
            ModelStatistics,
            project=project,
            task=task,
            as_of=as_of,
            min_position=min_position,
        )
        answer = await info.context.services.catalogue.statistics(query, info.context.visible)
        reflected(info, answer.position)
        return Statistics.of(decoded(answer.body))

    @strawberry.field(description="models ranked by their best version's metric")
    async def top_performing(
        self,
        info: Ctx,
        metric: str,
        task: str | None = None,
        project: str | None = None,
        first: int | None = None,
        order: str | None = None,
        as_of: Annotated[Time | None, strawberry.argument(description=AS_OF)] = None,
        min_position: Annotated[int | None, strawberry.argument(description=MIN_POSITION)] = None,
    ) -> Leaderboard:
        query = message(
            TopPerforming,
            metric=metric,
            task=task,
            project=project,
            limit=first,
            order=order,
            as_of=as_of,
            min_position=min_position,
        )
        answer = await info.context.services.catalogue.top_performing(query, info.context.visible)
        reflected(info, answer.position)
        body = decoded(answer.body)
        items = [RankedModel.of(item, answer.position, query.as_of) for item in body["items"]]
        return Leaderboard(
            metric=body["metric"], direction=body["direction"], order=body["order"], items=items
        )

    @strawberry.field(description="every metric seen or declared, by name")
    async def metric_definitions(
        self, info: Ctx, min_position: int | None = None
    ) -> list[MetricDefinition]:
        query = message(ListMetricDefinitions, min_position=min_position)
        catalogue = info.context.services.catalogue
        answer = await catalogue.metric_definitions(query, info.context.visible)
        reflected(info, answer.position)
        return [MetricDefinition.of(item) for item in decoded(answer.body)["items"]]

    @strawberry.field(description="the global event log, in order (REST's GET /api/v1/events)")
    async def events(
        self,
        info: Ctx,
        after: int = 0,
        first: int = 100,
        model_id: strawberry.ID | None = None,
        types: list[str] | None = None,
        actor: str | None = None,
        min_position: Annotated[int | None, strawberry.argument(description=MIN_POSITION)] = None,
    ) -> EventConnection:
        query = message(
            ListEvents,
            after=after,
            limit=first,
            model_id=model_id,
            type=types,
            actor=actor,
            min_position=min_position,
        )
        services = info.context.services
        if query.min_position is not None:
            within_the_log(
                query.min_position, await in_thread(info.context, services.event_log.head)
            )
        view = feed_view(services, info.context.caller)  # type: ignore[arg-type]
        page = await events_page(info.context, query, view)
        reflected(info, page.next_after)
        return EventConnection.of(page)

    @strawberry.field(description="every model serving an environment, now or as of a time")
    async def deployments(
        self,
        info: Ctx,
        environment: str | None = None,
        model_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
        as_of: Annotated[Time | None, strawberry.argument(description=AS_OF)] = None,
        min_position: Annotated[int | None, strawberry.argument(description=MIN_POSITION)] = None,
    ) -> ServingConnection:
        query = message(
            ListDeployments,
            environment=environment,
            model_id=model_id,
            limit=first,
            cursor=after,
            as_of=as_of,
            min_position=min_position,
        )
        models = info.context.services.models
        answer = await in_thread(info.context, models.serving, query, info.context.visible)
        reflected(info, answer.position)
        body = decoded(answer.body)
        items = [ServingItem.seen(item, answer.position, query.as_of) for item in body["items"]]
        return ServingConnection.of(items, body["next_cursor"])
