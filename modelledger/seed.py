"""Realistic demo data, written through the command handlers (so it is real history)."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from commands.handlers import handle_sync
from commands.messages import (
    ArchiveModel,
    Command,
    CompleteTraining,
    CreateModel,
    DeployModel,
    FailTraining,
    RollBackDeployment,
    TrainModel,
    UpdateModel,
)
from commands.registry import CommandContext, CommandResult, ModelRegistry
from write_model.errors import DuplicateModelName

TASKS = {
    "classification": ["pytorch", "tensorflow", "sklearn", "xgboost"],
    "regression": ["sklearn", "xgboost", "lightgbm"],
    "text-generation": ["transformers", "pytorch", "vllm"],
    "object-detection": ["pytorch", "onnx"],
    "speech-recognition": ["transformers", "pytorch"],
}
PROJECTS = ["payments", "search", "ads", "support", "vision", "voice"]
TAGS = [
    "prod-candidate",
    "baseline",
    "experimental",
    "gpu",
    "cpu",
    "multilingual",
    "distilled",
    "quantized",
    "tabular",
    "nlp",
    "cv",
]
FAILURES = [
    "CUDA out of memory",
    "dataset not found",
    "loss diverged (NaN)",
    "preempted spot instance",
    "timeout after 6h",
]


def send(registry: ModelRegistry, command: Command, story: CommandContext) -> CommandResult:
    """Each command its own id (the events' causation id); one model's story shares a
    correlation id."""
    return handle_sync(registry, command, dataclasses.replace(story, command_id=str(uuid.uuid4())))


def metrics_for(task: str, rng: random.Random, skill: float) -> dict[str, float]:
    if task == "regression":
        return {"rmse": round(rng.uniform(0.5, 5) / skill, 4), "mae": round(rng.uniform(0.3, 3), 4)}
    if task == "text-generation":
        return {
            "perplexity": round(rng.uniform(5, 40) / skill, 3),
            "loss": round(rng.uniform(1.5, 3.5) / skill, 4),
        }
    if task == "speech-recognition":
        return {"wer": round(rng.uniform(0.05, 0.3) / skill, 4)}
    return {
        "accuracy": round(min(0.999, rng.uniform(0.6, 0.95) * skill), 4),
        "f1": round(min(0.999, rng.uniform(0.55, 0.93) * skill), 4),
        "loss": round(rng.uniform(0.05, 0.8) / skill, 4),
    }


def seed_model(registry: ModelRegistry, index: int, rng: random.Random) -> int:
    """One model's life: train (sometimes failing), deploy, maybe roll back. Returns commands."""
    ctx = CommandContext(actor="seed")
    task = rng.choice(list(TASKS))
    project = rng.choice(PROJECTS)
    created = send(
        registry,
        CreateModel(
            name=f"{task}-{index:06d}-{uuid.uuid4().hex[:4]}",
            project=project,
            task=task,
            framework=rng.choice(TASKS[task]),
            description=f"Demo {task} model #{index} for {project}",
            tags=rng.sample(TAGS, rng.randint(0, 3)),
            configuration={"seed": index},
        ),
        ctx,
    )
    model_id = uuid.UUID(created.id)
    commands = 1
    versions = 0
    for attempt in range(rng.randint(0, 4)):
        run = send(
            registry,
            TrainModel(
                model_id=model_id,
                dataset=f"s3://data/{project}/{attempt}",
                hyperparameters={"lr": 10 ** -rng.randint(2, 5)},
            ),
            ctx,
        )
        run_id = run.details["run_id"]
        if rng.random() < 0.15:
            send(
                registry,
                FailTraining(model_id=model_id, run_id=run_id, reason=rng.choice(FAILURES)),
                ctx,
            )
        else:
            send(
                registry,
                CompleteTraining(
                    model_id=model_id,
                    run_id=run_id,
                    metrics=metrics_for(task, rng, 1 + attempt * 0.03),
                    artifact_uri=f"s3://models/{model_id}/{versions + 1}",
                ),
                ctx,
            )
            versions += 1
        commands += 2
    commands += _deploy(registry, model_id, versions, rng, ctx)
    if rng.random() < 0.1:
        send(registry, UpdateModel(model_id=model_id, description="Updated by seed"), ctx)
        commands += 1
    if versions == 0 and rng.random() < 0.2:
        send(registry, ArchiveModel(model_id=model_id, reason="abandoned"), ctx)
        commands += 1
    return commands


def _deploy(
    registry: ModelRegistry,
    model_id: uuid.UUID,
    versions: int,
    rng: random.Random,
    ctx: CommandContext,
) -> int:
    if versions == 0 or rng.random() < 0.3:
        return 0
    commands = 0
    for environment in rng.sample(["staging", "production"], rng.randint(1, 2)):
        for version in range(max(1, versions - 1), versions + 1):
            send(
                registry,
                DeployModel(model_id=model_id, environment=environment, model_version=version),
                ctx,
            )
            commands += 1
        if versions > 1 and rng.random() < 0.2:
            send(registry, RollBackDeployment(model_id=model_id, environment=environment), ctx)
            commands += 1
    return commands


def seed(
    registry: ModelRegistry,
    models: int,
    *,
    concurrency: int = 4,
    random_seed: int = 7,
    on_model: Callable[[int], None] = lambda _: None,
) -> int:
    """Seed ``models`` models; ``on_model`` is told each model's command count (progress)."""

    def one(index: int) -> int:
        try:
            commands = seed_model(registry, index, random.Random(random_seed * 1_000_003 + index))
        except DuplicateModelName:
            commands = 0
        on_model(commands)
        return commands

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return sum(pool.map(one, range(models)))
