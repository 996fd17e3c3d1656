"""One import of an MLflow registry: read it whole, plan what changed since the import
last recorded it, then record each step through the command handlers, in this process.

Times: into a store with no model yet, the steps go in MLflow's time order, each
recorded at MLflow's own time, so the registry as of a past moment reads as MLflow's
did then (as far as MLflow recorded it). Otherwise every step is recorded at the time
of the import. Either way each event carries MLflow's id, time and user as its
``source``. Aliases and stages have no time in MLflow: they are recorded at the
import's time, after the versions they serve.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from anyio import to_thread
from pydantic import ValidationError

from commands.handlers import handle
from commands.messages import Command, CreateModel, DeployModel
from commands.metric_definitions import DefineMetric, define_metric, read_definition
from commands.mlflow_import.imported import (
    ACTOR,
    SYSTEM,
    ImportedModel,
    StoreView,
    imported_model,
    source_of,
    store_view,
)
from commands.mlflow_import.plan import Step, archived_skip, plan_archive, plan_model
from commands.mlflow_import.wanted import Skipped, environment_skips, wanted_model
from commands.ports import LogPages, MlflowModel, MlflowRegistry
from commands.registry import CommandContext, ModelRegistry
from write_model.errors import DomainError, VersionNotFound
from write_model.metric_definition import Direction
from write_model.training import imported_number
from write_model.values import model_id_for


class Watcher(Protocol):
    """Told how the import goes (the CLI draws progress bars)."""

    def read(self, what: str, n: int) -> None: ...

    def planned(self, steps: int) -> None: ...

    def recorded(self, n: int) -> None: ...


@dataclass(frozen=True)
class ImportOptions:
    project: str | None = None  # every model into this project (else its tag, else "mlflow")
    dry_run: bool = False
    directions: dict[str, Direction] = field(default_factory=dict)


@dataclass
class Summary:
    where: str
    models: int  # registered models MLflow holds
    versions: int
    mlflow_times: bool  # recorded at MLflow's times (the first import into a store)
    dry_run: bool
    done: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0  # registered models with nothing new
    skipped: list[Skipped] = field(default_factory=list)


async def import_registry(
    registry: ModelRegistry,
    log: LogPages,
    source: MlflowRegistry,
    options: ImportOptions,
    watcher: Watcher,
) -> Summary:
    found = await to_thread.run_sync(source.read, watcher.read)
    view = await to_thread.run_sync(store_view, log, registry.mapper)
    summary = Summary(
        where=source.where,
        models=len(found),
        versions=sum(len(m.versions) for m in found),
        mlflow_times=not view.has_models,
        dry_run=options.dry_run,
    )
    steps = await to_thread.run_sync(_plan, registry, source, found, view, options, summary)
    if summary.mlflow_times:  # MLflow's time order; what has no time last, in plan order
        steps.sort(key=lambda step: (step.time is None, step.time or datetime.min))
    watcher.planned(len(steps))
    if options.dry_run:
        summary.done.update(step.kind for step in steps)
        return summary
    await _record(registry, steps, summary, watcher)
    return summary


def _plan(
    registry: ModelRegistry,
    source: MlflowRegistry,
    found: list[MlflowModel],
    view: StoreView,
    options: ImportOptions,
    summary: Summary,
) -> list[Step]:
    steps: list[Step] = []
    for mlflow_model in found:
        wanted = wanted_model(mlflow_model, options.project, source.where)
        imported, refused = _imported(registry, view, wanted.name, wanted.project)
        if refused is not None or (imported is not None and imported.model.archived):
            summary.skipped.append(refused or archived_skip(wanted))
            continue
        try:
            planned = plan_model(wanted, imported)
        except ValidationError as error:  # what MLflow allows and ModelLedger does not
            summary.skipped.append(Skipped(wanted.name, _first(error)))
            continue
        known = {f"{wanted.name} v{n}" for n in (imported.versions if imported else ())}
        skips = [*wanted.skipped, *environment_skips(mlflow_model, wanted)]
        summary.skipped.extend(s for s in skips if s.what not in known)  # (said before)
        summary.unchanged += not planned
        steps.extend(planned)
    return (
        steps + _archives(registry, source, found, view, summary) + _definitions(registry, options)
    )


def _archives(
    registry: ModelRegistry,
    source: MlflowRegistry,
    found: list[MlflowModel],
    view: StoreView,
    summary: Summary,
) -> list[Step]:
    """The models this registry gave that it no longer has (and says so: a model hidden
    from this reader, or missing from a partial export, is not deleted)."""
    present = {m.name for m in found}
    missing = [
        name
        for name in sorted(view.from_mlflow)
        if name not in present and view.registries.get(name) == source.where
    ]
    steps: list[Step] = []
    for name in sorted(source.gone(missing)) if missing else ():
        gone = imported_model(registry, view.from_mlflow[name])
        if gone is None or gone.model.archived:
            continue
        planned = plan_archive(name, gone)
        if not planned:
            reason = "deleted in MLflow, but deployed in ModelLedger by others: not archived"
            summary.skipped.append(Skipped(name, reason))
        steps.extend(planned)
    return steps


def _imported(
    registry: ModelRegistry, view: StoreView, name: str, project: str
) -> tuple[ImportedModel | None, Skipped | None]:
    """The model an earlier import made of this registered model, if any; or why none
    can be made (its name is taken by a model that did not come from MLflow)."""
    if name in view.from_mlflow:
        return imported_model(registry, view.from_mlflow[name]), None
    if view.has_models and imported_model(registry, model_id_for(project, name)) is not None:
        taken = f"project {project!r} already has a model named {name!r} not from MLflow"
        return None, Skipped(name, taken)
    return None, None


def _definitions(registry: ModelRegistry, options: ImportOptions) -> list[Step]:
    """The directions asked for that are not declared so yet (a unit or description
    declared before stays)."""
    steps = []
    for metric, direction in sorted(options.directions.items()):
        declared = read_definition(registry, metric)
        if declared is not None and declared.declared and declared.direction == direction:
            continue
        kept = {}
        if declared is not None and declared.declared:
            kept = {"unit": declared.unit, "description": declared.description}
        define = DefineMetric(name=metric, direction=direction, **kept)
        source = source_of("metric-directions", metric, None, None)
        steps.append(Step("metric definitions", metric, define, source, None))
    return steps


# Steps sent together share the store's group commit (one transaction for many), a few
# times the throughput of one at a time (docs/benchmarks.md, "Importing from MLflow").
# Never two of one model (its steps stay in order), and at MLflow's times only steps
# MLflow made within a second of each other: the log's times rise as they always do, up
# to the moment between deciding a command and committing it.
TOGETHER = 32
WITHIN = timedelta(seconds=1)


async def _record(
    registry: ModelRegistry, steps: list[Step], summary: Summary, watcher: Watcher
) -> None:
    correlation = str(uuid.uuid4())  # one per import: its events read as one story
    times = _recording_times(steps, summary.mlflow_times)
    refused: set[object] = set()  # models whose creation was refused: nothing more of them
    for batch in _batches(list(zip(steps, times, strict=True))):
        sent = (_one(registry, step, at, correlation, summary, refused) for step, at in batch)
        await asyncio.gather(*sent)
        watcher.recorded(len(batch))


def _recording_times(steps: list[Step], mlflow_times: bool) -> list[datetime | None]:
    """Each step's time to be recorded at: MLflow's (never before an earlier step's, never
    in the future), or None (now)."""
    times: list[datetime | None] = []
    latest: datetime | None = None
    for step in steps:
        if mlflow_times and step.time is not None:
            latest = min(max(step.time, latest or step.time), datetime.now(UTC))
            times.append(latest)
        else:
            times.append(None)
    return times


def _batches(
    steps: list[tuple[Step, datetime | None]],
) -> Iterator[list[tuple[Step, datetime | None]]]:
    batch: list[tuple[Step, datetime | None]] = []
    subjects: set[object] = set()
    for step, at in steps:
        first = batch[0][1] if batch else None
        apart = (at is None) != (first is None) or (
            at is not None and first is not None and at - first > WITHIN
        )
        subject = _subject(step.command)
        if batch and (len(batch) == TOGETHER or subject in subjects or apart):
            yield batch
            batch, subjects = [], set()
        batch.append((step, at))
        subjects.add(subject)
    if batch:
        yield batch


def _subject(command: Command) -> object:
    """What a command changes: its model (or metric)."""
    if isinstance(command, CreateModel):
        return model_id_for(command.project, command.name)
    if isinstance(command, DefineMetric):
        return command.name
    return getattr(command, "model_id", command)


async def _one(
    registry: ModelRegistry,
    step: Step,
    at: datetime | None,
    correlation: str,
    summary: Summary,
    refused: set[object],
) -> None:
    subject = _subject(step.command)
    if subject in refused:
        return
    ctx = CommandContext(actor=ACTOR, correlation_id=correlation, source=step.source, at=at)
    try:
        await _send(registry, step, ctx)
    except DomainError as error:
        summary.skipped.append(Skipped(step.what, error.detail))
        if isinstance(step.command, CreateModel):
            refused.add(subject)  # (e.g. a user took the name meanwhile: not theirs to fill)
    else:
        summary.done[step.kind] += 1


async def _send(registry: ModelRegistry, step: Step, ctx: CommandContext) -> None:
    command = step.command
    if isinstance(command, DefineMetric):
        await to_thread.run_sync(define_metric, registry, command, ctx)
        return
    if isinstance(command, DeployModel) and step.serves is not None:
        model = await registry.load_async(command.model_id, ctx)
        number = imported_number(model.versions, model.training_runs, SYSTEM, step.serves)
        if number is None:
            raise VersionNotFound(f"MLflow's version {step.serves} was not imported")
        command = command.model_copy(update={"model_version": number})
    await handle(registry, command, ctx)


def _first(error: ValidationError) -> str:
    """Pydantic's first complaint, in a line: which field, and what is wrong."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{where}: {first['msg']}"
