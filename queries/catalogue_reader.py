"""The catalogue's reader: search, statistics and leaderboards, now (the catalogue
tables) or as of a past time (the timeline), for every way in (REST, UI, GraphQL).

Answers are encoded once and kept in the process's answer cache (queries.tables),
keyed by the tables' position and the question, so a cached answer is exactly what
a read at that position gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel

from queries.answers import Answer
from queries.leaderboard import top_performing
from queries.messages import ModelStatistics, SearchModels, TopPerforming
from queries.metric_definitions import (
    GetMetricDefinition,
    ListMetricDefinitions,
    metric_definitions,
)
from queries.past_statistics import statistics_as_of
from queries.reading import Snapshot
from queries.search import search_models
from queries.sources import timeline_moment
from queries.statistics import model_statistics
from queries.tables import Question, ReadTables
from queries.visibility import Projects
from read_model.tables import CATALOGUE_VERSION


def question_of(query: BaseModel, visible: Projects) -> Question:
    """What was asked, canonically: a scoped key's question (and answer) is its own."""
    asked: dict[str, Any] = query.model_dump(exclude={"min_position"})
    asked["visible"] = sorted(visible) if visible is not None else None
    return type(query).__name__, orjson.dumps(asked, option=orjson.OPT_SORT_KEYS)


def asked_moment(query: BaseModel) -> str | None:
    moment = getattr(query, "as_of", None)
    return timeline_moment(moment) if moment is not None else None


class CatalogueReader:
    def __init__(self, tables: ReadTables) -> None:
        self.tables = tables

    async def search(self, query: SearchModels, visible: Projects) -> Answer:
        as_of = asked_moment(query)
        return await self._answer(query, visible, lambda s: search_models(s, query, as_of, visible))

    async def statistics(self, query: ModelStatistics, visible: Projects) -> Answer:
        as_of = asked_moment(query)

        def read(snapshot: Snapshot) -> Any:
            if as_of is None:
                return model_statistics(snapshot, query, visible)
            return statistics_as_of(snapshot, query, as_of, visible)

        return await self._answer(query, visible, read)

    async def top_performing(self, query: TopPerforming, visible: Projects) -> Answer:
        as_of = asked_moment(query)
        return await self._answer(
            query, visible, lambda s: top_performing(s, query, as_of, visible)
        )

    async def metric_definitions(
        self, query: ListMetricDefinitions | GetMetricDefinition, visible: Projects
    ) -> Answer:
        name = getattr(query, "name", None)
        return await self._answer(query, visible, lambda s: metric_definitions(s, visible, name))

    async def _answer(
        self, query: BaseModel, visible: Projects, read: Callable[[Snapshot], Any]
    ) -> Answer:
        question = question_of(query, visible)
        min_position: int | None = getattr(query, "min_position", None)
        as_of = asked_moment(query)
        if as_of is not None:
            return await self.tables.past_answer(question, as_of, min_position, read)
        return await self.tables.cached(
            "catalogue", CATALOGUE_VERSION, question, min_position, read
        )
