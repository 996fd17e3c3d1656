"""``AsyncModelLedger``: the registry from asyncio code, in the domain's words.

This is the source written by hand; ``modelledger_client/_sync/client.py`` (the
``ModelLedger`` for plain code) is generated from it by ``unasync``
(``clients/python/generate_sync.py``) and committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from modelledger_client import routes
from modelledger_client._async.events import follow
from modelledger_client._async.session import AsyncSession
from modelledger_client.models import (
    ApiKey,
    CommandResult,
    DefinedMetric,
    Deployments,
    Event,
    HubImport,
    IssuedKey,
    LeaderboardEntry,
    MetricDefinition,
    Model,
    ModelSummary,
    RevokedKey,
    RunStarted,
    Statistics,
    TrainingRun,
    VersionRecord,
)
from modelledger_client.retries import RetryPolicy


class AsyncModelLedger:
    """A client of one registry. ``url`` and ``api_key`` default to ``MODELLEDGER_URL``
    and ``MODELLEDGER_API_KEY``. Use it as a context manager (it closes its connections),
    or call ``close()``."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.session = AsyncSession(url, api_key, timeout=timeout, retry=retry, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.session.close()

    @property
    def position(self) -> int:
        """The highest log position this client's commands returned: every read sends
        it as ``min_position``, so it reflects them."""
        return self.session.position

    # -- models --------------------------------------------------------------------------

    async def register_model(
        self,
        name: str,
        *,
        project: str,
        task: str,
        framework: str,
        description: str | None = None,
        tags: list[str] | None = None,
        configuration: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> CommandResult:
        body: dict[str, Any] = {"name": name, "project": project, "task": task}
        body["framework"] = framework
        extra = {"description": description, "tags": tags, "configuration": configuration}
        body |= {k: v for k, v in {**extra, "owner": owner}.items() if v is not None}
        return CommandResult(**await self.session.command("POST", routes.MODELS, body))

    async def get_model(
        self,
        model_id: str,
        *,
        as_of: datetime | str | None = None,
        at_version: int | None = None,
    ) -> Model:
        params = {"as_of": routes.moment(as_of), "at_version": at_version}
        return Model(
            **await self.session.query(routes.path(routes.MODEL, model_id=model_id), params)
        )

    async def find_model(self, project: str, name: str) -> Model:
        found = await self.session.query(routes.BY_NAME, {"project": project, "name": name})
        return Model(**found)

    async def update_model(
        self, model_id: str, *, if_match: int | None = None, **changes: Any
    ) -> CommandResult:
        """Change a model's description, task, framework, tags, configuration or owner;
        with ``if_match`` (the version read), only if nobody changed it meanwhile."""
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
        path = routes.path(routes.MODEL, model_id=model_id)
        return CommandResult(**await self.session.command("PATCH", path, changes, None, **headers))

    async def archive_model(self, model_id: str, *, reason: str | None = None) -> CommandResult:
        path = routes.path(routes.MODEL, model_id=model_id)
        params = {"reason": reason} if reason else None
        return CommandResult(**await self.session.command("DELETE", path, None, params))

    # -- training ------------------------------------------------------------------------

    async def start_training(
        self,
        model_id: str,
        *,
        dataset: str,
        hyperparameters: dict[str, Any] | None = None,
        backend: str = "external",
        base_model: str | None = None,
    ) -> RunStarted:
        body: dict[str, Any] = {"dataset": dataset, "backend": backend}
        body |= {"hyperparameters": hyperparameters or {}}
        if base_model is not None:
            body["base_model"] = base_model
        path = routes.path(routes.TRAIN, model_id=model_id)
        return RunStarted(**await self.session.command("POST", path, body))

    async def complete_training(
        self,
        model_id: str,
        run_id: str,
        *,
        metrics: dict[str, float],
        artifact_uri: str | None = None,
    ) -> CommandResult:
        body: dict[str, Any] = {"metrics": metrics}
        if artifact_uri is not None:
            body["artifact_uri"] = artifact_uri
        path = routes.path(routes.COMPLETE, model_id=model_id, run_id=run_id)
        return CommandResult(**await self.session.command("POST", path, body))

    async def fail_training(self, model_id: str, run_id: str, *, reason: str) -> CommandResult:
        path = routes.path(routes.FAIL, model_id=model_id, run_id=run_id)
        return CommandResult(**await self.session.command("POST", path, {"reason": reason}))

    async def training_runs(self, model_id: str) -> list[TrainingRun]:
        found: list[TrainingRun] = []
        after: str | None = None
        while True:
            params = {"after": after} if after else {}
            page = await self.session.query(routes.path(routes.RUNS, model_id=model_id), params)
            found += [TrainingRun(**item) for item in page["items"]]
            after = page.get("next_after")
            if not after:
                return found

    # -- versions ------------------------------------------------------------------------

    async def get_version(self, model_id: str, number: int) -> VersionRecord:
        path = routes.path(routes.VERSION, model_id=model_id, number=number)
        return VersionRecord(**await self.session.query(path))

    async def versions(self, model_id: str) -> list[VersionRecord]:
        page = await self.session.query(routes.path(routes.VERSIONS, model_id=model_id))
        return [VersionRecord(**item) for item in page["items"]]

    async def update_version(
        self,
        model_id: str,
        number: int,
        *,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> CommandResult:
        body = {
            k: v for k, v in {"description": description, "tags": tags}.items() if v is not None
        }
        path = routes.path(routes.VERSION, model_id=model_id, number=number)
        return CommandResult(**await self.session.command("PATCH", path, body))

    # -- deployments ---------------------------------------------------------------------

    async def deploy(
        self,
        model_id: str,
        *,
        environment: str,
        model_version: int | None = None,
        endpoint_url: str | None = None,
        target: str | None = None,
    ) -> CommandResult:
        body: dict[str, Any] = {"environment": environment}
        asked = {"model_version": model_version, "endpoint_url": endpoint_url, "target": target}
        body |= {k: v for k, v in asked.items() if v is not None}
        path = routes.path(routes.DEPLOY, model_id=model_id)
        return CommandResult(**await self.session.command("POST", path, body))

    async def undeploy(self, model_id: str, *, environment: str) -> CommandResult:
        path = routes.path(routes.UNDEPLOY, model_id=model_id)
        return CommandResult(
            **await self.session.command("POST", path, {"environment": environment})
        )

    async def rollback(self, model_id: str, *, environment: str) -> CommandResult:
        path = routes.path(routes.ROLLBACK, model_id=model_id)
        return CommandResult(
            **await self.session.command("POST", path, {"environment": environment})
        )

    async def deployments(
        self, model_id: str, *, as_of: datetime | str | None = None
    ) -> Deployments:
        path = routes.path(routes.DEPLOYMENTS, model_id=model_id)
        return Deployments(**await self.session.query(path, {"as_of": routes.moment(as_of)}))

    # -- the catalogue -------------------------------------------------------------------

    async def search_models(
        self,
        q: str | None = None,
        *,
        project: str | None = None,
        task: str | None = None,
        framework: str | None = None,
        status: str | None = None,
        tags: list[str] | None = None,
        owner: str | None = None,
        name: str | None = None,
        environment: str | None = None,
        metric: str | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        sort: str | None = None,
        order: str | None = None,
        as_of: datetime | str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[ModelSummary]:
        """Every model the search finds, page after page (the cursor is followed here)."""
        params: dict[str, Any] = {
            "q": q, "project": project, "task": task, "framework": framework,
            "status": status, "tag": tags or [], "owner": owner, "name": name,
            "environment": environment, "metric": metric, "min_value": min_value,
            "max_value": max_value, "sort": sort, "order": order, "as_of": routes.moment(as_of),
            "limit": page_size,
        }  # fmt: skip
        while True:
            page = await self.session.query(routes.SEARCH, params)
            for item in page["items"]:
                yield ModelSummary(**item)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    async def statistics(
        self,
        *,
        project: str | None = None,
        task: str | None = None,
        as_of: datetime | str | None = None,
    ) -> Statistics:
        params = {"project": project, "task": task, "as_of": routes.moment(as_of)}
        return Statistics(**await self.session.query(routes.STATISTICS, params))

    async def top_performing(
        self,
        metric: str,
        *,
        task: str | None = None,
        project: str | None = None,
        limit: int = 10,
        as_of: datetime | str | None = None,
    ) -> list[LeaderboardEntry]:
        params = {"metric": metric, "task": task, "project": project, "limit": limit}
        found = await self.session.query(
            routes.TOP_PERFORMING, {**params, "as_of": routes.moment(as_of)}
        )
        return [LeaderboardEntry(**item) for item in found["items"]]

    # -- the log -------------------------------------------------------------------------

    async def history(self, model_id: str) -> AsyncIterator[Event]:
        """A model's events, oldest first, page after page."""
        after = 0
        path = routes.path(routes.HISTORY, model_id=model_id)
        while True:
            page = await self.session.query(path, {"after": after})
            for item in page["items"]:
                yield Event(**item)
            if page.get("next_after") is None:
                return
            after = page["next_after"]

    async def events(
        self,
        after: int = 0,
        *,
        model_id: str | None = None,
        types: list[str] | None = None,
        actor: str | None = None,
    ) -> AsyncIterator[Event]:
        """The log's events after a position, in order, up to its end now."""
        params: dict[str, Any] = {"model_id": model_id, "type": types or [], "actor": actor}
        while True:
            page = await self.session.query(routes.EVENTS, {**params, "after": after})
            for item in page["items"]:
                yield Event(**item)
            after = page["next_after"]
            if page["at_head"]:
                return

    def follow_events(
        self,
        after: int | None = None,
        *,
        model_id: str | None = None,
        types: list[str] | None = None,
    ) -> AsyncIterator[Event]:
        """The log's events as they are stored, for as long as you iterate: from
        ``after`` (None: from now), going on after the last one seen when the connection
        drops or the server restarts."""
        return follow(self.session, after, model_id=model_id, types=types)

    # -- the Hub, metric definitions and keys ----------------------------------------

    async def import_from_hub(
        self, repo_id: str, *, revision: str | None = None, project: str | None = None
    ) -> HubImport:
        body = {
            k: v
            for k, v in {"repo_id": repo_id, "revision": revision, "project": project}.items()
            if v is not None
        }
        return HubImport(**await self.session.command("POST", routes.HUB_IMPORT, body))

    async def define_metric(
        self,
        name: str,
        direction: str,
        *,
        unit: str | None = None,
        description: str | None = None,
    ) -> DefinedMetric:
        body = {"direction": direction, "unit": unit, "description": description}
        body = {k: v for k, v in body.items() if v is not None}
        path = routes.path(routes.METRIC_DEFINITION, name=name)
        return DefinedMetric(**await self.session.command("PUT", path, body))

    async def remove_metric_definition(self, name: str) -> DefinedMetric:
        path = routes.path(routes.METRIC_DEFINITION, name=name)
        return DefinedMetric(**await self.session.command("DELETE", path))

    async def metric_definitions(self) -> list[MetricDefinition]:
        found = await self.session.query(routes.METRIC_DEFINITIONS)
        return [MetricDefinition(**item) for item in found["items"]]

    async def metric_definition(self, name: str) -> MetricDefinition:
        path = routes.path(routes.METRIC_DEFINITION, name=name)
        return MetricDefinition(**await self.session.query(path))

    async def issue_key(
        self, name: str, *, role: str, projects: list[str] | None = None
    ) -> IssuedKey:
        """A new API key (admins). Sent once and never retried: its secret is shown only
        in the answer, so a lost answer means checking ``keys()`` and revoking the key."""
        body: dict[str, Any] = {"name": name, "role": role}
        if projects is not None:
            body["projects"] = projects
        return IssuedKey(**await self.session.command_once("POST", routes.KEYS, body))

    async def keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        found = await self.session.query(routes.KEYS, {"include_revoked": include_revoked})
        return [ApiKey(**item) for item in found["items"]]

    async def revoke_key(self, key_id: str) -> RevokedKey:
        path = routes.path(routes.KEY, key_id=key_id)
        return RevokedKey(**await self.session.command("DELETE", path))
