"""Import a model from a model source (the Hugging Face Hub) into the registry.

The first import registers the model with the source's metadata and records its
reported evaluation results as a trained version. A later import records only what
changed: a ModelUpdated with the fields that differ, and a new version only when
the reported results differ from the last imported ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from anyio import to_thread

from commands.errors import ConcurrentChange, ProviderDown
from commands.handlers import handle, replay
from commands.messages import MAX_TAGS, CreateModel, ImportVersion, UpdateModel
from commands.ports import ModelSource, ProviderRejected, ProviderUnavailable, SourceModel
from commands.registry import CommandContext, ModelRegistry, store_errors
from write_model.access import NotPermitted
from write_model.errors import InvalidValue, ModelNotFound
from write_model.model import AIModel
from write_model.values import model_id_for

MAX_DESCRIPTION = 10_000


@dataclass(frozen=True)
class ImportOutcome:
    id: str
    version: int
    position: int | None
    created: bool
    changed: list[str]
    model_version: int | None
    revision: str

    def body(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def import_model(
    registry: ModelRegistry,
    source: ModelSource,
    repo_id: str,
    project: str,
    ctx: CommandContext,
    revision: str | None = None,
) -> ImportOutcome:
    if ctx.projects is not None and project not in ctx.projects:
        # Before the Hub is asked: the answer is 403 whatever the Hub would have said.
        raise NotPermitted(
            f"this key may not import models into project {project!r}", field="project"
        )
    if ctx.idempotency is not None and (
        first := await to_thread.run_sync(_answered, registry, ctx)
    ):
        return first  # (this import was done: its whole answer, whatever the Hub says now)
    outcome = await _import(registry, source, repo_id, project, ctx, revision)
    if ctx.idempotency is not None:
        await to_thread.run_sync(_remember, registry, ctx, outcome)
    return outcome


async def _import(
    registry: ModelRegistry,
    source: ModelSource,
    repo_id: str,
    project: str,
    ctx: CommandContext,
    revision: str | None,
) -> ImportOutcome:
    found = await to_thread.run_sync(_fetch, source, repo_id, revision)
    metadata = catalogue_fields(found)
    model_id = model_id_for(project, found.repo_id)
    existing = await to_thread.run_sync(_existing, registry, model_id, ctx)
    if existing is None:
        create = CreateModel(name=found.repo_id, project=project, **metadata)
        result = await handle(registry, create, _step(ctx, "metadata"))
        changed = sorted(metadata)
    else:
        changed = sorted(k for k, v in metadata.items() if getattr(existing, k) != v)
        update = UpdateModel(model_id=model_id, **metadata)
        result = await handle(registry, update, _step(ctx, "metadata"))
    created = existing is None or (result.replayed and result.version == 1)
    if created:  # (a retry of the import that registered it says so again)
        changed = sorted(metadata)
    outcome = ImportOutcome(
        result.id, result.version, result.position, created, changed, None, found.revision
    )
    metrics = reported_metrics(found)
    unchanged = existing is not None and not _differs(existing, source.name, metrics)
    if unchanged and not (result.replayed and _recorded(registry, _step(ctx, "version"))):
        return outcome
    version = _version(model_id, source.name, found, metrics)
    recorded = await handle(registry, version, _step(ctx, "version"))
    return dataclasses.replace(
        outcome,
        version=recorded.version,
        position=recorded.position,
        model_version=recorded.details["model_version"],
    )


def _answered(registry: ModelRegistry, ctx: CommandContext) -> ImportOutcome | None:
    """The answer of the import this one retries, if it finished."""
    first = replay(registry, ctx.idempotency) if ctx.idempotency is not None else None
    if first is None:
        return None
    told = first.details
    return ImportOutcome(
        first.id, first.version, told["answered_position"], told["created"], told["changed"],
        told["model_version"], told["revision"],
    )  # fmt: skip


def _remember(registry: ModelRegistry, ctx: CommandContext, outcome: ImportOutcome) -> None:
    """Keep the whole answer under the import's Idempotency-Key (its steps' keys keep
    each step's): a retry after a lost answer gets it, even if the Hub changed since."""
    model = _existing(registry, UUID(outcome.id), ctx)
    assert model is not None
    told = {k: v for k, v in outcome.body().items() if k not in ("id", "version", "position")}
    with contextlib.suppress(ConcurrentChange):  # (moved on meanwhile: the steps' answers stay)
        registry.commit(model, ctx, answered_position=outcome.position, **told)


def _step(ctx: CommandContext, step: str) -> CommandContext:
    """The import's Idempotency-Key, made one per command it sends (a retried import
    replays each step it already recorded, whichever way it goes now)."""
    if ctx.idempotency is None:
        return ctx
    key = dataclasses.replace(ctx.idempotency, key=f"{ctx.idempotency.key}#{step}")
    return dataclasses.replace(ctx, idempotency=key)


def _recorded(registry: ModelRegistry, ctx: CommandContext) -> bool:
    """Whether the import this one retries recorded this step (to answer as it did)."""
    assert ctx.idempotency is not None
    with store_errors():
        return registry.store.find_idempotency(ctx.idempotency.key) is not None


def _fetch(source: ModelSource, repo_id: str, revision: str | None) -> SourceModel:
    try:
        return source.fetch(repo_id, revision)
    except ProviderUnavailable as error:
        raise ProviderDown(error.reason) from error
    except ProviderRejected as error:
        raise InvalidValue(error.reason, field="repo_id") from error


def _existing(registry: ModelRegistry, model_id: Any, ctx: CommandContext) -> AIModel | None:
    try:
        with store_errors():
            return registry.load(model_id, dataclasses.replace(ctx, expected_version=None))
    except ModelNotFound:
        return None


def catalogue_fields(found: SourceModel) -> dict[str, Any]:
    """The source's metadata in the catalogue's fields (each within its limits)."""
    configuration = {
        "source": "huggingface",
        "repo_id": found.repo_id,
        "url": found.url,
        "license": found.license,
        "base_model": found.base_model,
    }
    return {
        "description": found.description[:MAX_DESCRIPTION],
        "task": _identifier(found.task),
        "framework": _identifier(found.framework),
        "tags": [t for t in dict.fromkeys(found.tags) if 0 < len(t) <= 64 and t.isprintable()][
            :MAX_TAGS
        ],
        "configuration": {k: v for k, v in configuration.items() if v is not None},
    }


def reported_metrics(found: SourceModel) -> dict[str, float]:
    """One metric per name: the first result reported under it keeps the plain name,
    results for the same metric on other datasets are named ``<metric>@<dataset>``."""
    metrics: dict[str, float] = {}
    for result in found.evaluations:
        name = result.metric.strip().lower()[:100] or "score"
        if name in metrics:
            name = f"{name}@{result.dataset}"[:100]
        metrics.setdefault(name, result.value)
    return metrics


def _differs(model: AIModel, source: str, metrics: dict[str, float]) -> bool:
    imported = [v for v in model.versions if model.training_runs[v.run_id].backend == source]
    return not imported or imported[-1].metrics != metrics


def _version(
    model_id: Any, source: str, found: SourceModel, metrics: dict[str, float]
) -> ImportVersion:
    datasets = sorted({r.dataset for r in found.evaluations if r.dataset})
    return ImportVersion(
        model_id=model_id,
        source=source,
        dataset=", ".join(datasets)[:1000] or f"{source}:{found.repo_id}",
        metrics=metrics,
        output_model=found.repo_id,
        artifact_uri=f"{found.url}/tree/{found.revision}",
    )


def _identifier(text: str) -> str:
    """A task or framework as the catalogue keeps them: lower case, no spaces."""
    cleaned = re.sub(r"[^a-z0-9._+-]+", "-", text.strip().lower()).strip("-._+")[:64]
    return cleaned or "unknown"
