"""One handler per command: load the model, call one domain method, save."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, cast

from commands.errors import IdempotencyKeyReused, StoreUnavailable
from commands.messages import (
    ArchiveModel,
    Command,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    RollBackDeployment,
    TrainModel,
    UndeployModel,
    UpdateModel,
)
from commands.registry import (
    CommandContext,
    CommandResult,
    IdempotencyRequest,
    ModelRegistry,
    store_errors,
)
from write_model.errors import ConcurrentChange, DomainError, DuplicateModelName
from write_model.model import AIModel


def create_model(registry: ModelRegistry, cmd: CreateModel, ctx: CommandContext) -> CommandResult:
    model = AIModel.register(
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
    try:
        return registry.commit(model, ctx)
    except ConcurrentChange:
        raise DuplicateModelName(
            f"project {cmd.project!r} already has a model named {cmd.name!r}", field="name"
        ) from None


def update_model(registry: ModelRegistry, cmd: UpdateModel, ctx: CommandContext) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    model.update(cmd.changes(), ctx.meta)
    return registry.commit(model, ctx)


def train_model(registry: ModelRegistry, cmd: TrainModel, ctx: CommandContext) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    run_id = str(uuid.uuid4())
    model.start_training(
        run_id=run_id,
        dataset=cmd.dataset,
        hyperparameters=cmd.hyperparameters,
        backend=cmd.backend,
        meta=ctx.meta,
    )
    return registry.commit(model, ctx, run_id=run_id)


def complete_training(
    registry: ModelRegistry, cmd: CompleteTraining, ctx: CommandContext
) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    version = model.complete_training(
        run_id=cmd.run_id, metrics=cmd.metrics, artifact_uri=cmd.artifact_uri, meta=ctx.meta
    )
    return registry.commit(model, ctx, run_id=cmd.run_id, model_version=version)


def fail_training(registry: ModelRegistry, cmd: FailTraining, ctx: CommandContext) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    model.fail_training(run_id=cmd.run_id, reason=cmd.reason, meta=ctx.meta)
    return registry.commit(model, ctx, run_id=cmd.run_id)


def deploy_model(registry: ModelRegistry, cmd: DeployModel, ctx: CommandContext) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    version = model.deploy(
        environment=cmd.environment,
        model_version=cmd.model_version,
        endpoint_url=cmd.endpoint_url,
        meta=ctx.meta,
    )
    return registry.commit(model, ctx, environment=cmd.environment, model_version=version)


def undeploy_model(
    registry: ModelRegistry, cmd: UndeployModel, ctx: CommandContext
) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    model.undeploy(environment=cmd.environment, meta=ctx.meta)
    return registry.commit(model, ctx, environment=cmd.environment)


def roll_back_deployment(
    registry: ModelRegistry, cmd: RollBackDeployment, ctx: CommandContext
) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    version = model.roll_back(environment=cmd.environment, meta=ctx.meta)
    return registry.commit(model, ctx, environment=cmd.environment, model_version=version)


def archive_model(registry: ModelRegistry, cmd: ArchiveModel, ctx: CommandContext) -> CommandResult:
    model = registry.load(cmd.model_id, ctx)
    model.archive(reason=cmd.reason, meta=ctx.meta)
    return registry.commit(model, ctx)


Handler = Callable[[ModelRegistry, Any, CommandContext], CommandResult]

HANDLERS: dict[type[Command], Handler] = {
    CreateModel: create_model,
    UpdateModel: update_model,
    TrainModel: train_model,
    CompleteTraining: complete_training,
    FailTraining: fail_training,
    DeployModel: deploy_model,
    UndeployModel: undeploy_model,
    RollBackDeployment: roll_back_deployment,
    ArchiveModel: archive_model,
}


def handle(registry: ModelRegistry, command: Command, ctx: CommandContext) -> CommandResult:
    """Run a command once: a retry with the same Idempotency-Key replays the first result."""
    if ctx.idempotency is not None and (first := replay(registry, ctx.idempotency)):
        return first
    try:
        return _execute(registry, command, ctx)
    except (ConcurrentChange, DuplicateModelName):
        # Two copies of one retried request raced: the winner's answer is ours too.
        if ctx.idempotency is not None and (first := replay(registry, ctx.idempotency)):
            return first
        raise


def _execute(registry: ModelRegistry, command: Command, ctx: CommandContext) -> CommandResult:
    """Run the handler; if it failed on a cached model, once more from the store.

    Models are cached without a read per command, so another process's write
    can make a cached model stale. A stale model can only fail (a domain error,
    or a version conflict at the store, which checks every append), so a
    success is always right and a failure is re-checked against the log.
    """
    handler = HANDLERS[type(command)]
    model_id = getattr(command, "model_id", None)
    try:
        return handler(registry, command, ctx)
    except (StoreUnavailable, IdempotencyKeyReused):
        raise
    except DomainError:
        if model_id is None or not registry.forget(model_id):
            raise
        return handler(registry, command, ctx)


def replay(registry: ModelRegistry, request: IdempotencyRequest) -> CommandResult | None:
    with store_errors():
        stored = registry.ledger.find_idempotency(request.key)
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
