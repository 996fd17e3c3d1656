"""Pages: the catalogue's search, the leaderboard, what serves where and the event log.

Connections follow Relay's shape (``edges { cursor node }``, ``pageInfo``) plus ``nodes``.
The readers page with one cursor per page (keyset pages, opaque): ``pageInfo.endCursor``
is it, and the last edge carries it too; the other edges' cursors are null, since a page
can only be resumed after its end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.context import GraphContext, in_thread
from api.graphql.model import Model
from api.graphql.types import DeploymentStretch, Event, PageInfo, Time
from queries.events import FeedPage, FeedView, list_events
from queries.messages import ListEvents

Node = TypeVar("Node")


async def model_seen(
    info: Info[GraphContext, Any], model_id: str, seen_at: int, as_of: datetime | None
) -> Model | None:
    """A model a page names by id: its whole resource, through the operation's loader."""
    loader = info.context.parts().resources
    found = await loader.load((UUID(model_id), seen_at, as_of))
    if found is None:
        return None
    return Model(data=found, seen_at=seen_at, as_of=as_of, whole=True)


@strawberry.type
class ModelEdge:
    node: Model
    cursor: str | None = strawberry.field(description="on the page's last edge only")


@strawberry.type
class ModelConnection:
    edges: list[ModelEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Model]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, body: dict[str, Any], position: int, as_of: datetime | None) -> ModelConnection:
        nodes = [
            Model(data=item, seen_at=position, as_of=as_of, whole=False) for item in body["items"]
        ]
        end = body["next_cursor"]
        edges = [ModelEdge(node=node, cursor=cursor) for node, cursor in _cursors(nodes, end)]
        return cls(edges=edges, page_info=PageInfo.ending(end))


@strawberry.type
class RankedModel:
    rank: int = strawberry.field(description="1 is the best")
    id: strawberry.ID
    name: str
    project: str
    task: str
    model_version: int = strawberry.field(description="the version with the best value")
    value: float
    seen_at: strawberry.Private[int]
    as_of: strawberry.Private[datetime | None]

    @strawberry.field(description="the ranked model's whole resource")
    async def model(self, info: Info[GraphContext, Any]) -> Model | None:
        return await model_seen(info, str(self.id), self.seen_at, self.as_of)

    @classmethod
    def of(cls, item: dict[str, Any], position: int, as_of: datetime | None) -> RankedModel:
        return cls(
            rank=item["rank"],
            id=item["id"],
            name=item["name"],
            project=item["project"],
            task=item["task"],
            model_version=item["model_version"],
            value=item["value"],
            seen_at=position,
            as_of=as_of,
        )


@strawberry.type
class Leaderboard:
    metric: str
    direction: str = strawberry.field(description="maximize or minimize")
    order: str = strawberry.field(description="asc or desc: the ranking")
    items: list[RankedModel]


@strawberry.type
class ServingItem(DeploymentStretch):
    model_id: strawberry.ID
    seen_at: strawberry.Private[int]
    as_of: strawberry.Private[datetime | None]

    @strawberry.field(description="the serving model's whole resource")
    async def model(self, info: Info[GraphContext, Any]) -> Model | None:
        return await model_seen(info, str(self.model_id), self.seen_at, self.as_of)

    @classmethod
    def seen(cls, item: dict[str, Any], position: int, as_of: datetime | None) -> ServingItem:
        stretch = DeploymentStretch.of(item)
        return cls(**vars(stretch), model_id=item["model_id"], seen_at=position, as_of=as_of)


@strawberry.type
class ServingEdge:
    node: ServingItem
    cursor: str | None = strawberry.field(description="on the page's last edge only")


@strawberry.type
class ServingConnection:
    edges: list[ServingEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[ServingItem]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, items: list[ServingItem], end: str | None) -> ServingConnection:
        edges = [ServingEdge(node=item, cursor=cursor) for item, cursor in _cursors(items, end)]
        return cls(edges=edges, page_info=PageInfo.ending(end))


@strawberry.type
class EventEdge:
    node: Event
    cursor: str = strawberry.field(description="the event's position")


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo = strawberry.field(
        description="endCursor: send (as a number) as after for the next page"
    )
    at_head: bool = strawberry.field(description="true: nothing more is stored yet")

    @strawberry.field
    def nodes(self) -> list[Event]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: FeedPage) -> EventConnection:
        edges = [
            EventEdge(node=Event.of(item), cursor=str(item["position"])) for item in page.items
        ]
        info = PageInfo(has_next_page=not page.at_head, end_cursor=str(page.next_after))
        return cls(edges=edges, page_info=info, at_head=page.at_head)


def _cursors(nodes: list[Node], end: str | None) -> list[tuple[Node, str | None]]:
    """Each node with its edge's cursor: the page's end on the last, none on the others."""
    return [(node, end if i == len(nodes) - 1 else None) for i, node in enumerate(nodes)]


async def events_page(context: GraphContext, query: ListEvents, view: FeedView) -> FeedPage:
    event_log = context.services.event_log
    page: FeedPage = await in_thread(context, list_events, event_log, query, view)
    return page


__all__ = ["Time"]
