"""A model in GraphQL: what a search hit shows, and, as asked, the rest of its resource,
its versions, training runs, deployment history and audit trail.

A model reached through a root field that reads one model (``model``, ``modelByName``)
holds its whole resource, read-your-writes as in REST. One reached through a page
(``models``, ``topPerforming``, ``deployments``) holds what the page gave; its other
fields load through the operation's DataLoaders, at least as far as the page was read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.context import GraphContext, decoded, in_thread, message
from api.graphql.types import (
    BestMetric,
    Event,
    MetricValue,
    ModelDeployments,
    PageInfo,
    PendingDeployment,
    Serving,
    Time,
    TrainingRun,
)
from queries.errors import UnknownModel
from queries.messages import ListHistory


@strawberry.type
class Version:
    """A trained version of a model."""

    number: int
    run_id: str = strawberry.field(description="the training run that produced it")
    metrics: list[MetricValue]
    artifact_uri: str | None
    created_at: Time
    output_model: str | None = strawberry.field(description="its name at its backend")
    description: str
    tags: list[str]
    source_version: int | None = strawberry.field(
        description="its number in the registry it was imported from (MLflow's numbers "
        "have gaps); null: trained here, or imported from a source without numbers"
    )
    runs: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field(description="the training run that made it")
    def training_run(self) -> TrainingRun | None:
        found = next((run for run in self.runs if run["run_id"] == self.run_id), None)
        return None if found is None else TrainingRun.of(found)

    @classmethod
    def of(cls, version: dict[str, Any], runs: list[dict[str, Any]]) -> Version:
        return cls(
            number=version["number"],
            run_id=version["run_id"],
            metrics=MetricValue.listed(version["metrics"]),
            artifact_uri=version.get("artifact_uri"),
            created_at=version["created_at"],
            output_model=version.get("output_model"),
            description=version.get("description", ""),
            tags=version.get("tags", []),
            source_version=version.get("source_version"),
            runs=runs,
        )


@strawberry.type
class HistoryPage:
    nodes: list[Event] = strawberry.field(description="in log order")
    page_info: PageInfo


@strawberry.type
class Model:
    # What was read (a whole resource or a summary), the position it reflects, and the
    # time it was read as of (None: now).
    data: strawberry.Private[dict[str, Any]]
    seen_at: strawberry.Private[int]
    as_of: strawberry.Private[datetime | None]
    whole: strawberry.Private[bool]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.data["id"])

    @strawberry.field(description="the model's aggregate version (REST's If-Match)")
    def version(self) -> int:
        return int(self.data["version"])

    @strawberry.field
    def name(self) -> str:
        return str(self.data["name"])

    @strawberry.field
    def project(self) -> str:
        return str(self.data["project"])

    @strawberry.field
    def description(self) -> str:
        return str(self.data["description"])

    @strawberry.field
    def task(self) -> str:
        return str(self.data["task"])

    @strawberry.field
    def framework(self) -> str:
        return str(self.data["framework"])

    @strawberry.field
    def tags(self) -> list[str]:
        return list(self.data["tags"])

    @strawberry.field
    def owner(self) -> str:
        return str(self.data["owner"])

    @strawberry.field(description="created, training, trained, deployed, failed or archived")
    def status(self) -> str:
        return str(self.data["status"])

    @strawberry.field
    def created_at(self) -> Time:
        return Time(self.data["created_at"])

    @strawberry.field
    def updated_at(self) -> Time:
        return Time(self.data["updated_at"])

    @strawberry.field(description="the newest trained version; null: none")
    def latest_version(self) -> int | None:
        return self.data["latest_version"]  # type: ignore[no-any-return]

    @strawberry.field(description="by metric: the best value any version reached")
    def best_metrics(self) -> list[BestMetric]:
        return BestMetric.listed(self.data["best_metrics"])

    @strawberry.field(description="what serves now, by environment")
    def serving(self) -> list[Serving]:
        return Serving.listed(self.data["deployments"])

    @strawberry.field
    async def configuration(self, info: Info[GraphContext, Any]) -> JSON:
        configuration: JSON = (await self._whole(info))["configuration"]
        return configuration

    @strawberry.field(description="every trained version, oldest first")
    async def versions(self, info: Info[GraphContext, Any]) -> list[Version]:
        whole = await self._whole(info)
        return [Version.of(v, whole["training_runs"]) for v in whole["versions"]]

    @strawberry.field(description="one trained version; null: no such version")
    async def trained_version(self, info: Info[GraphContext, Any], number: int) -> Version | None:
        whole = await self._whole(info)
        found = next((v for v in whole["versions"] if v["number"] == number), None)
        return None if found is None else Version.of(found, whole["training_runs"])

    @strawberry.field(description="in the order they started")
    async def training_runs(self, info: Info[GraphContext, Any]) -> list[TrainingRun]:
        return [TrainingRun.of(run) for run in (await self._whole(info))["training_runs"]]

    @strawberry.field(description="what a provider is still carrying out, by environment")
    async def pending_deployments(self, info: Info[GraphContext, Any]) -> list[PendingDeployment]:
        return PendingDeployment.listed((await self._whole(info))["pending_deployments"])

    @strawberry.field(
        description="what serves where, and every stretch before: as of the model's asOf, "
        "else now (at a version too)"
    )
    async def deployments(self, info: Info[GraphContext, Any]) -> ModelDeployments:
        loader = info.context.parts().deployments
        found = await loader.load((UUID(self.data["id"]), self.seen_at, self.as_of))
        return ModelDeployments.of(found)

    @strawberry.field(description="the audit trail: the model's events, read from the log")
    async def history(
        self, info: Info[GraphContext, Any], first: int = 100, after: int = 0
    ) -> HistoryPage:
        context = info.context
        query = message(ListHistory, limit=first, after=after)
        context.spend_log_read()
        answer = await in_thread(
            context, context.services.models.history, UUID(self.data["id"]), context.visible, query
        )
        body = decoded(answer.body)
        next_after = body["next_after"]
        info_ = PageInfo(
            has_next_page=next_after is not None,
            end_cursor=None if next_after is None else str(next_after),
        )
        nodes = [Event.of({**item, "model_id": body["id"]}) for item in body["items"]]
        return HistoryPage(nodes=nodes, page_info=info_)

    async def _whole(self, info: Info[GraphContext, Any]) -> dict[str, Any]:
        if self.whole:
            return self.data
        loader = info.context.parts().resources
        found: dict[str, Any] | None = await loader.load(
            (UUID(self.data["id"]), self.seen_at, self.as_of)
        )
        if found is None:  # (a page's model is in the catalogue: never, unless rebuilt away)
            raise UnknownModel(f"model {self.data['id']} not found", field="id")
        return found
