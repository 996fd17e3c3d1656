"""What every resolver of one GraphQL operation is handed: the services, the caller, the
DataLoaders of this operation, and the position each root field's data reflects.

DataLoaders batch the nested fields of a page of models into one read per kind (their
batch readers are in queries/model_batches.py): a page of 50 models with their versions,
deployments and best metrics costs a fixed number of statements, whatever its size.
Loaders live for one operation only, so nothing read is kept beyond it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
from anyio import CapacityLimiter, to_thread
from pydantic import BaseModel, ValidationError
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from api.services import Services
from queries.errors import ProjectionBehind, UnknownModel
from queries.model_batches import ModelBatches
from queries.visibility import Projects
from write_model.access import Principal
from write_model.values import instant

Message = TypeVar("Message", bound=BaseModel)

READS_AT_ONCE = 4
# (model id, the position its data was seen at, as of): what a model's parts are read for.
PartKey = tuple[UUID, int, datetime | None]


class InvalidArgument(ValueError):
    """An argument the readers' messages refuse: the GraphQL error names the argument."""

    def __init__(self, detail: str, argument: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = argument


@dataclass
class GraphContext(BaseContext):
    services: Services
    caller: Principal | None  # None: a WebSocket not yet through connection_init
    client: str = "unknown"  # its address (failed keys spend its rate-limit tokens)
    connection_params: dict[str, Any] | None = None  # a WebSocket's connection_init payload
    key: str = ""  # the key a WebSocket was opened with (checked again as it streams)
    positions: dict[str, int] = field(default_factory=dict)
    loaders: Loaders | None = None
    # One operation's reads: a few at once (each holds a thread and a pooled connection),
    # and a bounded number of models read from the log (each a fold of all its events,
    # MODELLEDGER_GRAPHQL_MAX_LOG_READS), so one document costs no more than a page of
    # REST calls.
    threads: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(READS_AT_ONCE))
    log_reads: int = 0  # made so far

    @property
    def visible(self) -> Projects:
        assert self.caller is not None
        return self.caller.visible_projects

    def spend_log_read(self) -> None:
        """One more model read from the log (its trail, or itself as of a time)."""
        most = self.services.options.graphql.max_log_reads
        if self.log_reads >= most:
            raise InvalidArgument(
                f"one query may read at most {most} models' histories or past states from "
                "the log (MODELLEDGER_GRAPHQL_MAX_LOG_READS): ask for fewer, or page",
                "first",
            )
        self.log_reads += 1

    def parts(self) -> Loaders:
        if self.loaders is None:
            self.loaders = Loaders(self)
        return self.loaders


def reflected(info: Info[GraphContext, Any], position: int) -> None:
    """The root field being resolved reflects the log up to ``position`` (at least): the
    answer's ``extensions.positions`` says so, by the field's name in the answer."""
    path = info.path
    while path.prev is not None:
        path = path.prev
    key, positions = str(path.key), info.context.positions
    positions[key] = min(positions.get(key, position), position)


# The readers name REST's parameters; GraphQL's arguments are these (else camelCase).
ARGUMENTS = {"cursor": "after", "limit": "first", "tag": "tags", "type": "types"}


def argument_of(field: str) -> str:
    """The GraphQL argument a reader's field name stands for (``query.as_of``: asOf)."""
    name = field.removeprefix("query.")
    if name in ARGUMENTS:
        return ARGUMENTS[name]
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def message(kind: type[Message], **values: Any) -> Message:
    """The readers' message for these values (None: left out), its refusals naming
    GraphQL's arguments."""
    try:
        return kind(**{name: value for name, value in values.items() if value is not None})
    except ValidationError as invalid:
        first = invalid.errors()[0]
        argument = argument_of(str(first["loc"][0]) if first["loc"] else "")
        raise InvalidArgument(f"{argument}: {first['msg']}", argument) from None


async def in_thread(context: GraphContext, read: Callable[..., Any], *args: Any) -> Any:
    return await to_thread.run_sync(read, *args, limiter=context.threads)


async def or_none(context: GraphContext, read: Callable[..., Any], *args: Any) -> Any:
    """An unknown model and one the key may not see are both null."""
    try:
        return await in_thread(context, read, *args)
    except UnknownModel:
        return None


class Loaders:
    """This operation's DataLoaders."""

    def __init__(self, context: GraphContext) -> None:
        self.context = context
        self.batches = ModelBatches(context.services.models)
        self.resources = DataLoader(self._resources)
        self.deployments = DataLoader(self._deployments)

    async def _resources(self, keys: Sequence[PartKey]) -> list[dict[str, Any] | None]:
        """Whole resources of models seen in summaries (a search, a leaderboard): now from
        the catalogue, in one statement; as of a time, each folded from the log."""
        context = self.context
        visible, models = context.visible, context.services.models
        found: dict[PartKey, dict[str, Any] | None] = {}
        now = [key for key in keys if key[2] is None]
        if now:
            at_least = max(key[1] for key in now)
            ids = [key[0] for key in now]
            with _parts_behind(at_least):
                read, _ = await in_thread(context, self.batches.resources, ids, visible, at_least)
            found.update({key: read.get(key[0]) for key in now})
        for key in keys:
            if key[2] is not None:
                context.spend_log_read()
                answer = await or_none(context, models.past, key[0], visible, None, key[2])
                found[key] = None if answer is None else decoded(answer.body)
        return [found[key] for key in keys]

    async def _deployments(self, keys: Sequence[PartKey]) -> list[dict[str, Any]]:
        found: dict[PartKey, dict[str, Any]] = {}
        for as_of in {key[2] for key in keys}:
            group = [key for key in keys if key[2] == as_of]
            at_least = max(key[1] for key in group)
            ids = [key[0] for key in group]
            when = None if as_of is None else instant(as_of)
            with _parts_behind(at_least):
                batch = self.batches.deployments
                read, _ = await in_thread(self.context, batch, ids, at_least, when)
            found.update({key: read[key[0]] for key in group})
        return [found[key] for key in keys]


@contextmanager
def _parts_behind(at_least: int) -> Iterator[None]:
    """Tables not yet where the models were seen: a 503 about that, not about a
    ``minPosition`` the caller may never have sent (as REST's reads of a model's parts)."""
    try:
        yield
    except ProjectionBehind as behind:
        if behind.field != "min_position":
            raise
        raise ProjectionBehind(
            f"the tables have not yet taken in position {at_least}, where these models were "
            "read; retry shortly"
        ) from behind


def decoded(body: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(body)
    return decoded
