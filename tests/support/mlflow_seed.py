"""The MLflow registry the import tests start from, as plain data, and how it is written.

``SEED`` is what a seeded MLflow holds once ``write_seed`` is done, in the words of
``commands.ports`` (no mlflow import here: the project's tests compare an import with
it): 20 registered models, 60 model versions (59 from runs, one registered from an
object-store path with no run), 10 aliases, one version in Staging and one in
Production (their models have no alias of that name), one run deleted after its
version was registered, a NaN and a +Infinity latest metric, unicode names and a name
with spaces, and two models whose numbers have a gap (a version created, then deleted).
``SMALL`` is three of those models: the committed export fixture holds them.

What MLflow decides (run ids, times) is not known before seeding: ``write_seed``
returns a copy of the plan with those read back from MLflow.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

MAX_FLOAT = 1.7976931348623157e308  # MLflow keeps +Infinity as the largest float


@dataclass(frozen=True)
class SeedRun:
    """A run; each metric's values by step 0..n-1, so the last one is the latest."""

    name: str
    user: str
    experiment: str
    history: dict[str, tuple[float, ...]]
    params: dict[str, str]
    dataset: str | None
    deleted: bool = False  # deleted after its version was registered
    run_id: str = ""  # read back

    @property
    def metrics(self) -> dict[str, float]:
        """Each metric's latest value as MLflow reports it (+Infinity is clamped)."""
        return {k: clamp(v[-1]) for k, v in self.history.items()}


@dataclass(frozen=True)
class SeedVersion:
    number: int  # MLflow's version number once seeding is done
    description: str
    tags: dict[str, str]
    run: SeedRun | None  # None: registered from ``path`` with no run
    stage: str = "None"
    path: str = ""
    created_ms: int = 0  # read back, as are the rest
    updated_ms: int = 0
    user_id: str = ""
    status: str = ""
    source: str = ""

    @property
    def run_id(self) -> str:
        return self.run.run_id if self.run else ""


@dataclass(frozen=True)
class SeedModel:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]  # alias -> version number
    versions: tuple[SeedVersion, ...]  # in version order, as MLflow ends with them
    removed: tuple[int, ...] = ()  # numbers created then deleted (the gaps)
    created_ms: int = 0  # read back
    updated_ms: int = 0


@dataclass(frozen=True)
class SeedRegistry:
    models: tuple[SeedModel, ...]
    experiments: dict[str, str] = field(default_factory=dict)  # name -> id, read back

    def model(self, name: str) -> SeedModel:
        return next(m for m in self.models if m.name == name)

    @property
    def versions(self) -> list[SeedVersion]:
        return [v for m in self.models for v in m.versions]

    @property
    def runs(self) -> list[SeedRun]:
        return [v.run for v in self.versions if v.run is not None]

    @property
    def alias_count(self) -> int:
        return sum(len(m.aliases) for m in self.models)


def clamp(value: float) -> float:
    return MAX_FLOAT if math.isinf(value) and value > 0 else value


# -- the plan ---------------------------------------------------------------------------

USERS = ("alice", "bob", "chen.wei", "dana")
DATASETS = ("iris-train", "imdb-reviews", "fraud-2024q4", None)
NAMES = (
    "模型-分类",
    "Modèle-ü",
    "fraud detector v2",
    "churn-predictor",
    "sentiment-bert",
    "price-regressor",
    "image-segmenter",
    "speech-to-text",
    "recommender-als",
    "anomaly-iforest",
    "demand-forecast",
    "spam-filter",
    "ner-tagger",
    "ocr-reader",
    "credit-scorer",
    "topic-model",
    "pose-estimator",
    "translation-t5",
    "ctr-ranker",
    "face-matcher",
)
COUNTS = (3, 2, 4, 2, 5, 3, 2, 3, 4, 2, 3, 3, 1, 4, 3, 3, 5, 3, 3, 2)  # 60 versions kept
FRAMEWORKS = ("pytorch", "sklearn", "xgboost", "tensorflow")
TASKS = ("classification", "regression", "nlp", "vision")
ALIASES: dict[str, dict[str, int]] = {
    "模型-分类": {"champion": 3, "challenger": 2},
    "Modèle-ü": {"champion": 3},
    "fraud detector v2": {"champion": 4},
    "sentiment-bert": {"champion": 5, "shadow": 4},
    "price-regressor": {"prod-eu": 3},
    "recommender-als": {"challenger": 4},
    "spam-filter": {"champion": 1},
    "pose-estimator": {"champion": 5},
}
STAGES = {("Modèle-ü", 1): "Staging", ("fraud detector v2", 2): "Production"}
GAPS = {"Modèle-ü": (2,), "fraud detector v2": (3,)}  # Modèle-ü: 1, 3; fraud: 1, 2, 4, 5
NO_RUN = ("churn-predictor", 1)  # registered from a path: MLflow takes only remote ones
DELETED_RUN = ("fraud detector v2", 1)
NAN = ("模型-分类", 2, "f1")  # this version's run ends its f1 history with NaN
INFINITY = ("sentiment-bert", 1, "perplexity")


def _run(i: int, name: str, number: int, position: int) -> SeedRun | None:
    if (name, number) == NO_RUN:
        return None
    accuracy = round(0.60 + 0.011 * i + 0.03 * position, 4)
    loss = round(0.90 - 0.02 * i - 0.05 * position, 4)
    history: dict[str, tuple[float, ...]] = {
        "accuracy": (round(accuracy - 0.2, 4), round(accuracy - 0.07, 4), accuracy),
        "loss": (round(loss + 0.3, 4), round(loss + 0.1, 4), loss),
    }
    for model, version, metric in (NAN, INFINITY):
        if (model, version) == (name, number):
            history[metric] = (0.5, math.nan if metric == "f1" else math.inf)
    return SeedRun(
        name=f"{name} v{number}",
        user=USERS[(i + position) % len(USERS)],
        experiment="seed-vision" if i % 2 else "seed-text",
        history=history,
        params={
            "learning_rate": f"{0.001 * (1 + position):g}",
            "epochs": str(5 + i % 4),
            "optimizer": ("adam", "sgd")[i % 2],
        },
        dataset=DATASETS[(i + position) % len(DATASETS)],
        deleted=(name, number) == DELETED_RUN,
    )


def _version(i: int, name: str, number: int, position: int) -> SeedVersion:
    tags = {"validated": "true"} if position % 2 == 0 else {}
    if i % 3 == 0:
        tags["reviewer"] = USERS[i % len(USERS)]
    return SeedVersion(
        number=number,
        description=f"{name} version {number}" if position % 3 != 2 else "",
        tags=tags,
        run=_run(i, name, number, position),
        stage=STAGES.get((name, number), "None"),
        path=f"s3://models-bucket/{name}/{number}" if (name, number) == NO_RUN else "",
    )


def _model(i: int, name: str) -> SeedModel:
    gaps = GAPS.get(name, ())
    numbers = [n for n in range(1, COUNTS[i] + len(gaps) + 1) if n not in gaps]
    tags = {"team": ("vision", "text", "risk")[i % 3]}
    if i % 5 != 4:  # 16 models say their task, framework and project
        tags |= {"task": TASKS[i % 4], "framework": FRAMEWORKS[i % 4], "project": "seed"}
    return SeedModel(
        name=name,
        description="" if i % 7 == 6 else f"{name}: a seeded model",
        tags=tags,
        aliases=ALIASES.get(name, {}),
        versions=tuple(_version(i, name, n, p) for p, n in enumerate(numbers)),
        removed=gaps,
    )


SEED = SeedRegistry(tuple(_model(i, name) for i, name in enumerate(NAMES)))
SMALL = SeedRegistry(SEED.models[:3])  # unicode names, aliases, both stages, NaN, gaps


# -- writing it ---------------------------------------------------------------------------


class Client(Protocol):
    """What seeding needs of tests.support.mlflow_registry.MlflowClientProcess."""

    def call(self, verb: str, **args: Any) -> Any: ...


def write_seed(client: Client, plan: SeedRegistry = SEED) -> SeedRegistry:
    """Write ``plan`` through MLflow's client, then read back what MLflow decided."""
    experiments = {
        name: client.call("create_experiment", name=name)
        for name in sorted({run.experiment for run in plan.runs})
    }
    written = tuple(_write_model(client, model, experiments) for model in plan.models)
    for model in plan.models:  # after every version: a deleted run stays deleted
        for version in model.versions:
            if version.run is not None and version.run.deleted:
                run_id = _find(written, model.name, version.number).run_id
                client.call("delete_run", run_id=run_id)
    return SeedRegistry(tuple(read_back(client, m) for m in written), experiments)


def _find(models: tuple[SeedModel, ...], name: str, number: int) -> SeedVersion:
    model = next(m for m in models if m.name == name)
    return next(v for v in model.versions if v.number == number)


def _write_model(client: Client, model: SeedModel, experiments: dict[str, str]) -> SeedModel:
    client.call(
        "create_registered_model",
        name=model.name,
        description=model.description,
        tags=model.tags,
    )
    versions: list[SeedVersion] = []
    for number in range(1, max(v.number for v in model.versions) + 1):
        if number in model.removed:
            path = f"s3://models-bucket/{model.name}/discarded-{number}"
            client.call("create_model_version", name=model.name, source=path)
            continue
        planned = next(v for v in model.versions if v.number == number)
        versions.append(_write_version(client, model.name, planned, experiments))
    for number in model.removed:
        client.call("delete_model_version", name=model.name, version=number)
    for alias, number in model.aliases.items():
        client.call("set_registered_model_alias", name=model.name, alias=alias, version=number)
    return replace(model, versions=tuple(versions))


def _write_version(
    client: Client, name: str, planned: SeedVersion, experiments: dict[str, str]
) -> SeedVersion:
    run = planned.run
    if run is not None:
        run = replace(run, run_id=_log_run(client, run, experiments[run.experiment]))
    made = client.call(
        "create_model_version",
        name=name,
        source=f"runs:/{run.run_id}/model" if run else planned.path,
        run_id=run.run_id if run else None,
        description=planned.description,
        tags=planned.tags,
    )
    if made["version"] != planned.number:
        raise AssertionError(f"{name}: MLflow numbered {made['version']}, not {planned.number}")
    if planned.stage != "None":
        client.call(
            "transition_model_version_stage",
            name=name,
            version=planned.number,
            stage=planned.stage,
        )
    return replace(planned, run=run)


def _log_run(client: Client, run: SeedRun, experiment_id: str) -> str:
    history = {k: [_wire(x) for x in values] for k, values in run.history.items()}
    run_id: str = client.call(
        "log_run",
        experiment_id=experiment_id,
        run_name=run.name,
        metrics=history,
        params=run.params,
        dataset=run.dataset,
        user=run.user,
    )
    return run_id


def _wire(value: float) -> float | str:
    """JSON has no NaN or Infinity: the client process reads these strings as them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def read_back(client: Client, model: SeedModel) -> SeedModel:
    """``model`` with MLflow's times, sources, statuses and users filled in."""
    found = client.call("get_registered_model", name=model.name)
    listed = {v["version"]: v for v in client.call("search_model_versions", name=model.name)}
    versions = tuple(
        replace(
            v,
            created_ms=listed[v.number]["created_ms"],
            updated_ms=listed[v.number]["updated_ms"],
            user_id=listed[v.number]["user_id"],
            status=listed[v.number]["status"],
            source=listed[v.number]["source"],
        )
        for v in model.versions
    )
    return replace(
        model,
        versions=versions,
        created_ms=found["created_ms"],
        updated_ms=found["updated_ms"],
    )


# -- kept on disk: workers that copy a seeded database take its seed from there ---------


def to_json(registry: SeedRegistry) -> str:
    return json.dumps(asdict(registry))  # NaN and Infinity as Python's JSON writes them


def from_json(text: str) -> SeedRegistry:
    data = json.loads(text)
    return SeedRegistry(tuple(_model_from(m) for m in data["models"]), data["experiments"])


def _model_from(data: dict[str, Any]) -> SeedModel:
    versions = tuple(_version_from(v) for v in data.pop("versions"))
    return SeedModel(**data | {"removed": tuple(data["removed"])}, versions=versions)


def _version_from(data: dict[str, Any]) -> SeedVersion:
    run = data.pop("run")
    if run is not None:
        history = {k: tuple(v) for k, v in run.pop("history").items()}
        run = SeedRun(**run, history=history)
    return SeedVersion(**data, run=run)
