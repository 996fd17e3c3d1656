"""One handler per command: it calls one domain method on the loaded model.

``handle`` does the rest for every command: load the model, run its handler,
append the new events; Idempotency-Key replays and the stale-cache retry live
here once. It is async for the API; ``handle_sync`` serves the CLI and tests.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from typing import Any, cast

from anyio import to_thread

from commands.errors import ConcurrentChange, IdempotencyKeyReused, VersionMismatch
from commands.messages import (
    ArchiveModel,
    Command,
    CompleteDeployment,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailDeployment,
    FailTraining,
    ImportVersion,
    RecordTrainingJob,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
    UpdateModel,
    UpdateVersion,
)
from commands.registry import (
    CommandContext,
    CommandResult,
    IdempotencyRequest,
    ModelRegistry,
    store_errors,
)
from write_model.access import NotPermitted
from write_model.errors import DomainError, DuplicateModelName
from write_model.model import AIModel
from write_model.values import EXTERNAL

Details = dict[str, Any]


def create_model(cmd: CreateModel, ctx: CommandContext) -> AIModel:
    return AIModel.register(
        name=cmd.name,
        project=cmd.project,
        task=cmd.task,
        framework=cmd.framework,
        description=cmd.description,
        tags=cmd.tags,
        configuration=cmd.configuration,
        owner=cmd.owner,
        meta=ctx.meta,
    )


def update_model(model: AIModel, cmd: UpdateModel, ctx: CommandContext) -> Details:
    model.update(cmd.changes(), ctx.meta)
    return {}


def update_version(model: AIModel, cmd: UpdateVersion, ctx: CommandContext) -> Details:
    model.update_version(number=cmd.model_version, changes=cmd.changes(), meta=ctx.meta)
    return {"model_version": cmd.model_version}


def train_model(model: AIModel, cmd: TrainModel, ctx: CommandContext) -> Details:
    run_id = str(uuid.uuid4())
    model.start_training(
        run_id=run_id,
        dataset=cmd.dataset,
        hyperparameters=cmd.hyperparameters,
        backend=cmd.backend,
        base_model=cmd.base_model,
        meta=ctx.meta,
    )
    return {"run_id": run_id}


def record_training_job(model: AIModel, cmd: RecordTrainingJob, ctx: CommandContext) -> Details:
    model.record_training_job(run_id=cmd.run_id, job_id=cmd.job_id, meta=ctx.meta)
    return {"run_id": cmd.run_id, "job_id": cmd.job_id}


def import_version(model: AIModel, cmd: ImportVersion, ctx: CommandContext) -> Details:
    run_id = str(uuid.uuid4())
    version = model.import_version(
        run_id=run_id,
        source=cmd.source,
        dataset=cmd.dataset,
        metrics=cmd.metrics,
        output_model=cmd.output_model,
        artifact_uri=cmd.artifact_uri,
        meta=ctx.meta,
        hyperparameters=cmd.hyperparameters,
        source_version=cmd.source_version,
        about={"description": cmd.description, "tags": cmd.tags},
    )
    return {"run_id": run_id, "model_version": version}


def complete_training(model: AIModel, cmd: CompleteTraining, ctx: CommandContext) -> Details:
    version = model.complete_training(
        run_id=cmd.run_id,
        metrics=cmd.metrics,
        artifact_uri=cmd.artifact_uri,
        output_model=cmd.output_model,
        meta=ctx.meta,
        by_backend=cmd.by_backend,
    )
    return {"run_id": cmd.run_id, "model_version": version}


def fail_training(model: AIModel, cmd: FailTraining, ctx: CommandContext) -> Details:
    model.fail_training(run_id=cmd.run_id, reason=cmd.reason, meta=ctx.meta)
    return {"run_id": cmd.run_id}


def deploy_model(model: AIModel, cmd: DeployModel, ctx: CommandContext) -> Details:
    if cmd.target != EXTERNAL:  # the provider deploys; ModelDeployed comes when it has
        request_id = str(uuid.uuid4())
        version = model.request_deployment(
            request_id=request_id,
            environment=cmd.environment,
            model_version=cmd.model_version,
            target=cmd.target,
            meta=ctx.meta,
        )
        return _pending(cmd.environment, request_id, model_version=version, target=cmd.target)
    version = model.deploy(
        environment=cmd.environment,
        model_version=cmd.model_version,
        endpoint_url=cmd.endpoint_url,
        meta=ctx.meta,
    )
    return {"environment": cmd.environment, "model_version": version}


def undeploy_model(model: AIModel, cmd: UndeployModel, ctx: CommandContext) -> Details:
    served = model.deployments.get(cmd.environment)
    if served is not None and served.target != EXTERNAL:
        request_id = str(uuid.uuid4())
        model.request_undeployment(
            request_id=request_id, environment=cmd.environment, meta=ctx.meta
        )
        return _pending(cmd.environment, request_id, target=served.target)
    model.undeploy(environment=cmd.environment, meta=ctx.meta)
    return {"environment": cmd.environment}


def _pending(environment: str, request_id: str, **details: Any) -> Details:
    return {"environment": environment, "request_id": request_id, "status": "pending", **details}


def complete_deployment(model: AIModel, cmd: CompleteDeployment, ctx: CommandContext) -> Details:
    version = model.complete_deployment(
        request_id=cmd.request_id,
        endpoint_url=cmd.endpoint_url,
        endpoint_name=cmd.endpoint_name,
        meta=ctx.meta,
    )
    return {"request_id": cmd.request_id, "model_version": version}


def fail_deployment(model: AIModel, cmd: FailDeployment, ctx: CommandContext) -> Details:
    model.fail_deployment(request_id=cmd.request_id, reason=cmd.reason, meta=ctx.meta)
    return {"request_id": cmd.request_id}


def roll_back_deployment(model: AIModel, cmd: RollBackDeployment, ctx: CommandContext) -> Details:
    version = model.roll_back(environment=cmd.environment, meta=ctx.meta)
    return {"environment": cmd.environment, "model_version": version}


def archive_model(model: AIModel, cmd: ArchiveModel, ctx: CommandContext) -> Details:
    model.archive(reason=cmd.reason, meta=ctx.meta)
    return {}


Handler = Callable[[AIModel, Any, CommandContext], Details]

HANDLERS: dict[type[Command], Handler] = {
    UpdateModel: update_model,
    UpdateVersion: update_version,
    TrainModel: train_model,
    RecordTrainingJob: record_training_job,
    ImportVersion: import_version,
    CompleteTraining: complete_training,
    FailTraining: fail_training,
    DeployModel: deploy_model,
    UndeployModel: undeploy_model,
    CompleteDeployment: complete_deployment,
    FailDeployment: fail_deployment,
    RollBackDeployment: roll_back_deployment,
    ArchiveModel: archive_model,
}


async def handle(registry: ModelRegistry, command: Command, ctx: CommandContext) -> CommandResult:
    """Run a command once: a retry with the same Idempotency-Key replays the first result."""
    if ctx.idempotency is not None and (first := await _replay(registry, ctx.idempotency)):
        return first
    try:
        return await _execute(registry, command, ctx)
    except (DomainError, VersionMismatch, ConcurrentChange):
        # A copy of this very request may have won (the run is now finished, the
        # name taken, the If-Match version passed...): then its answer is ours too.
        if ctx.idempotency is not None and (first := await _replay(registry, ctx.idempotency)):
            return first
        raise


def handle_sync(registry: ModelRegistry, command: Command, ctx: CommandContext) -> CommandResult:
    """``handle`` for callers without an event loop (CLI, tests)."""
    return asyncio.run(handle(registry, command, ctx))


MAX_ATTEMPTS = 16  # each round of a race on one model lets one command win


async def _execute(registry: ModelRegistry, command: Command, ctx: CommandContext) -> CommandResult:
    """Run the handler against the model as it stands, deciding again when it moved.

    Models are cached without a read per command, and concurrent commands on one
    model race to append. The store checks every append against the version the
    decision was made on, so a stale decision can only fail: a version conflict,
    or a domain error or If-Match mismatch from a cached copy that missed another
    process's write.
    Either way the command is decided again on the model freshly read from the
    log (with If-Match, that fresh read answers 412). A success is never stale.
    """
    if isinstance(command, CreateModel):
        if ctx.projects is not None and command.project not in ctx.projects:
            raise NotPermitted(
                f"this key may not create models in project {command.project!r}", field="project"
            )
        if ctx.expected_version is not None:
            raise VersionMismatch("If-Match on a model that does not exist yet", field="If-Match")
        try:
            return await registry.commit_async(create_model(command, ctx), ctx)
        except ConcurrentChange:
            raise DuplicateModelName(
                f"project {command.project!r} already has a model named {command.name!r}",
                field="name",
            ) from None
    model_id = cast(Any, command).model_id
    fresh = False
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await _change(registry, command, ctx, model_id)
        except ConcurrentChange:
            registry.forget(model_id)
            if ctx.idempotency is not None and (first := await _replay(registry, ctx.idempotency)):
                return first  # the race was lost to a copy of this very request
            if attempt == MAX_ATTEMPTS:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * attempt))  # jitter against lockstep
        except (DomainError, VersionMismatch):  # decided on a stale copy? once more, fresh
            if fresh or not registry.forget(model_id):
                raise
        fresh = True
    raise AssertionError("unreachable")  # pragma: no cover


async def _change(
    registry: ModelRegistry, command: Command, ctx: CommandContext, model_id: uuid.UUID
) -> CommandResult:
    model = await registry.load_async(model_id, ctx)
    details = HANDLERS[type(command)](model, command, ctx)
    return await registry.commit_async(model, ctx, **details)


def run_once(
    registry: ModelRegistry, ctx: CommandContext, decide: Callable[[], CommandResult]
) -> CommandResult:
    """A command sent outside ``handle`` (revoking a key, removing a metric's definition)
    run once per Idempotency-Key: a retry replays the first answer, also when it lost a
    race to the first (which then says the key is revoked, the definition gone)."""
    if ctx.idempotency is not None and (first := replay(registry, ctx.idempotency)):
        return first
    try:
        return decide()
    except (DomainError, ConcurrentChange):
        if ctx.idempotency is not None and (first := replay(registry, ctx.idempotency)):
            return first
        raise


async def _replay(registry: ModelRegistry, request: IdempotencyRequest) -> CommandResult | None:
    return await to_thread.run_sync(replay, registry, request)


def replay(registry: ModelRegistry, request: IdempotencyRequest) -> CommandResult | None:
    with store_errors():
        stored = registry.store.find_idempotency(request.key)
    if stored is None:
        return None
    if stored.record.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request",
            field="Idempotency-Key",
        )
    body = dict(stored.record.body)
    model_id, version = cast(str, body.pop("id")), cast(int, body.pop("version"))
    return CommandResult(model_id, version, stored.position, body, replayed=True)
