"""The history of the read benchmark: N events of realistic model histories made by
the ``AIModel`` aggregate itself and appended with ``insert_events`` in large batches."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

from eventsourcing.persistence import StoredEvent
from rich.progress import Progress

from commands.registry import ModelRegistry
from modelledger.seed import FAILURES, PROJECTS, TAGS, TASKS, metrics_for
from write_model.model import AIModel
from write_model.values import EventMetadata

ACTORS = (
    "alice",
    "bob",
    "carol",
    "dmitri",
    "erin",
    "farah",
    "gustavo",
    "hiro",
    "ines",
    "jomo",
    "ci-bot",
    "airflow",
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Words for names and descriptions, drawn with Zipf-like weights: searches for
# the first words hit thousands of models, for the last ones a handful.
WORDS = _words(
    "baseline fraud churn ranking recommendation sentiment forecast demand anomaly "
    "detection retrieval embedding transformer customer realtime batch pricing risk "
    "credit spam moderation toxicity intent translation summarization segmentation "
    "resnet bert whisper yolo distilled quantized multilingual streaming mobile edge "
    "inventory logistics catalog search ads support vision voice ocr speech keyword "
    "entity question answering clustering propensity uplift attribution lifetime value "
    "conversion retention engagement session query rewrite spelling autocomplete image "
    "caption audio transcript invoice receipt document layout table chart satellite "
    "medical radiology genomics protein molecule weather energy traffic "
)
WORD_WEIGHTS = tuple(1.0 / (rank + 1) for rank in range(len(WORDS)))
ENVIRONMENTS = ("staging", "production")
RUNS_WEIGHTS = (8, 14, 20, 20, 15, 10, 8, 5)  # 0..7 training runs, mean ~3


class Story:
    """One model's life, decided by its own seeded RNG (a run is reproducible)."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.rng = rng
        self.actor = rng.choice(ACTORS)
        self.correlation = self._uuid()
        task = rng.choice(list(TASKS))
        word = rng.choices(WORDS, WORD_WEIGHTS)[0]
        self.task = task
        self.model = AIModel.register(
            name=f"{word}-{task}-{index:07d}",
            project=rng.choice(PROJECTS),
            task=task,
            framework=rng.choice(TASKS[task]),
            description=self._description(task),
            tags=rng.sample(TAGS, rng.randint(0, 3)),
            configuration={"seed": index, "layers": rng.randint(2, 48)},
            meta=self._meta(),
        )

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _meta(self) -> EventMetadata:
        """Each command its own causation id; one model's story shares a correlation id."""
        return EventMetadata(self.actor, self.correlation, self._uuid())

    def _description(self, task: str) -> str:
        words = self.rng.choices(WORDS, WORD_WEIGHTS, k=self.rng.randint(5, 12))
        return f"{task} model: " + " ".join(words)

    def play(self) -> list[AIModel.Event]:
        rng, model = self.rng, self.model
        if rng.random() < 0.2:
            model.update({"description": self._description(self.task)}, self._meta())
        self._train(rng.choices(range(len(RUNS_WEIGHTS)), RUNS_WEIGHTS)[0])
        if model.versions and rng.random() < 0.75:
            self._deploy()
        if rng.random() < 0.15:
            tags = sorted(set(model.tags) ^ {rng.choice(TAGS)})
            model.update({"tags": tags}, self._meta())
        if rng.random() < 0.05:
            for environment in sorted(model.deployments):
                model.undeploy(environment=environment, meta=self._meta())
            model.archive(reason=rng.choice(("superseded", "abandoned", "")), meta=self._meta())
        return cast(list[AIModel.Event], list(model.collect_events()))

    def _train(self, runs: int) -> None:
        rng, model = self.rng, self.model
        skill = rng.uniform(0.9, 1.05)
        for attempt in range(runs):
            run_id = self._uuid()
            model.start_training(
                run_id=run_id,
                dataset=f"s3://data/{model.project}/{self.task}/{attempt}",
                hyperparameters={"lr": 10 ** -rng.randint(2, 5), "epochs": rng.randint(1, 30)},
                backend=rng.choice(("local", "openai", "sagemaker")),
                meta=self._meta(),
            )
            last = attempt == runs - 1
            if last and rng.random() < 0.05:
                return  # still training
            if rng.random() < 0.15:
                model.fail_training(run_id=run_id, reason=rng.choice(FAILURES), meta=self._meta())
                continue
            model.complete_training(
                run_id=run_id,
                metrics=metrics_for(self.task, rng, skill + attempt * 0.03),
                artifact_uri=f"s3://models/{model.id}/{len(model.versions) + 1}",
                meta=self._meta(),
                by_backend=True,  # (each run's own backend reports it, as a provider does)
            )

    def _deploy(self) -> None:
        rng, model = self.rng, self.model
        latest = len(model.versions)
        for environment in rng.sample(ENVIRONMENTS, rng.randint(1, 2)):
            for version in range(max(1, latest - 1), latest + 1):
                model.deploy(
                    environment=environment,
                    model_version=version,
                    endpoint_url=f"https://{environment}.example.com/{model.id}/{version}",
                    meta=self._meta(),
                )
            if latest > 1 and rng.random() < 0.15:
                model.roll_back(environment=environment, meta=self._meta())
            elif rng.random() < 0.1:
                model.undeploy(environment=environment, meta=self._meta())


@dataclass
class HistoryResult:
    events: int = 0
    models: int = 0
    seconds: float = 0.0
    events_per_s: float = 0.0
    insert_calls: int = 0
    insert_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)


class Sample:
    """A uniform reservoir sample of the model ids (for GET /models/{id})."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.ids: list[str] = []
        self.seen = 0

    def offer(self, model_id: str) -> None:
        self.seen += 1
        if len(self.ids) < self.size:
            self.ids.append(model_id)
        elif (slot := self.rng.randrange(self.seen)) < self.size:
            self.ids[slot] = model_id


def generate_history(
    registry: ModelRegistry,
    target: int,
    batch: int,
    seed: int,
    sample: Sample,
    progress: Progress,
) -> HistoryResult:
    """Append exactly ``target`` events, ``batch`` per insert_events call.

    Events are made on this thread while the previous batch is inserted on
    another (psycopg releases the GIL while PostgreSQL works). The last model's
    history may be cut short: any prefix of a valid history is valid.
    """
    result = HistoryResult()
    task = progress.add_task("history", total=target, stats="")
    to_stored = registry.mapper.to_stored_event
    pending: list[StoredEvent] = []
    by_type: Counter[str] = Counter()
    in_flight: list[Future[float]] = []
    started = time.monotonic()

    def insert(stored: list[StoredEvent]) -> float:
        begun = time.perf_counter()
        registry.recorder.insert_events(stored)
        return time.perf_counter() - begun

    def drain(keep: int) -> None:
        while len(in_flight) > keep:
            result.insert_seconds += in_flight.pop(0).result()
            result.insert_calls += 1

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="insert") as pool:
        index = 0
        while result.events < target:
            story = Story(index, random.Random(seed * 1_000_003 + index))
            events = story.play()[: target - result.events]
            index += 1
            sample.offer(str(story.model.id))
            result.events += len(events)
            for event in events:
                by_type[type(event).__name__] += 1
                pending.append(to_stored(event))
            if len(pending) >= batch or result.events >= target:
                drain(keep=1)  # at most one batch in the database while we make the next
                in_flight.append(pool.submit(insert, pending))
                pending = []
                elapsed = time.monotonic() - started
                progress.update(
                    task,
                    completed=result.events,
                    stats=f"{result.events / elapsed:,.0f} events/s  {index:,} models",
                )
        drain(keep=0)
    result.models = index
    result.seconds = time.monotonic() - started
    result.events_per_s = result.events / result.seconds
    result.by_type = dict(by_type.most_common())
    progress.update(task, completed=target)
    return result
