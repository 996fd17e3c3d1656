"""The workloads of the MLflow comparison, each as one operation per registry, written
the way a user of each would do it (MLflow: its REST API, as its client calls it)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from bench.mlflow_server import SeedModel
from bench.registry_load import Operation, call
from write_model.values import model_id_for

WORDS = (
    "falcon", "otter", "maple", "quartz", "harbor", "ember", "lumen", "cobalt", "willow",
    "saffron", "tundra", "mosaic", "vertex", "nimbus", "juniper", "onyx", "sierra", "topaz",
    "zephyr", "glacier",
)  # fmt: skip
TEAMS = tuple(f"team-{i}" for i in range(20))
STATUSES = ("candidate", "staging", "production", "archived")
PROJECT = "bench"
MLFLOW_API = "/api/2.0/mlflow"


def seed_models(count: int, seed: int = 7) -> list[SeedModel]:
    """The same models for both registries: a word in every name (the substring and
    full-text searches look for it), a team and a status tag, one accuracy."""
    rnd = random.Random(seed)
    return [
        SeedModel(
            name=f"{WORDS[i % len(WORDS)]}-{i:06d}",
            team=TEAMS[(i // len(WORDS)) % len(TEAMS)],
            status=STATUSES[i % len(STATUSES)],
            accuracy=round(rnd.random(), 6),
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    write: bool
    # Slow answers (a client-side scan) get fewer clients and a minimum of answers,
    # and no warm-up: only calls begun after it count, so at 100,000 models MLflow's
    # first answers (91 s each) were thrown away and the next ones waited for.
    clients: int | None = None
    min_completed: int = 0
    warmup: bool = True


WORKLOADS = (
    Workload("create", "(a) register a model", True),
    Workload("version", "(b) record a trained version with metrics", True),
    Workload("promote", "(c) promote / deploy a version", True),
    Workload("search-name", "(d) search by name substring", False),
    Workload("search-tag", "(d) search by tag", False),
    Workload("get", "(e) get one model", False),
    Workload("top10", "(f) top 10 models by accuracy", False),
    Workload(
        "per-status",
        "(f) how many models per status",
        False,
        clients=4,
        min_completed=4,
        warmup=False,
    ),
)


@dataclass
class Context:
    base_url: str
    models: list[SeedModel]
    run: str  # unique per measurement: names created by writes never collide
    experiment_id: str = ""

    def model(self, i: int) -> SeedModel:
        return self.models[i % len(self.models)]


Factory = Callable[[Context], Operation]


# -- ModelLedger ----------------------------------------------------------------


def ledger_operations() -> dict[str, Factory]:
    return {
        "create": _ml_create,
        "version": _ml_version,
        "promote": _ml_promote,
        "search-name": lambda ctx: _ml_get(ctx, lambda i: ("/api/v1/models/search",
                                                           {"q": WORDS[i % 20], "limit": 100})),
        "search-tag": lambda ctx: _ml_get(ctx, lambda i: ("/api/v1/models/search",
                                                          {"tag": TEAMS[i % 20], "limit": 100})),
        "get": lambda ctx: _ml_get(ctx, lambda i: (f"/api/v1/models/{_id(ctx.model(i))}", {})),
        "top10": lambda ctx: _ml_get(ctx, lambda i: ("/api/v1/models/top-performing",
                                                     {"metric": "accuracy", "limit": 10})),
        "per-status": lambda ctx: _ml_get(ctx, lambda i: ("/api/v1/models/statistics", {})),
    }  # fmt: skip


def _id(model: SeedModel) -> str:
    return str(model_id_for(PROJECT, model.name))


def _ml_create(ctx: Context) -> Operation:
    async def create(session: aiohttp.ClientSession, i: int) -> None:
        body = {
            "name": f"new-{ctx.run}-{i}",
            "project": PROJECT,
            "task": "classification",
            "framework": "pytorch",
            "tags": [TEAMS[i % 20]],
        }
        await call(session, "POST", f"{ctx.base_url}/api/v1/models", body)

    return create


def _ml_version(ctx: Context) -> Operation:
    async def version(session: aiohttp.ClientSession, i: int) -> None:
        url = f"{ctx.base_url}/api/v1/models/{_id(ctx.model(i))}"
        run = await call(session, "POST", f"{url}/train", {"dataset": "s3://data/train"})
        metrics = {"accuracy": 0.5 + (i % 500) / 1000, "loss": 0.1}
        await call(
            session,
            "POST",
            f"{url}/training-runs/{run['run_id']}/complete",
            {"metrics": metrics},
        )

    return version


def _ml_promote(ctx: Context) -> Operation:
    async def promote(session: aiohttp.ClientSession, i: int) -> None:
        model = ctx.model(i)
        # A new environment each time round the models: every call records a change.
        environment = f"{ctx.run}-{i // len(ctx.models)}"
        body = {"environment": environment, "model_version": 1}
        await call(session, "POST", f"{ctx.base_url}/api/v1/models/{_id(model)}/deploy", body)

    return promote


def _ml_get(ctx: Context, request: Callable[[int], tuple[str, dict[str, object]]]) -> Operation:
    async def get(session: aiohttp.ClientSession, i: int) -> None:
        path, params = request(i)
        await call(session, "GET", f"{ctx.base_url}{path}", **params)

    return get


# -- MLflow ---------------------------------------------------------------------


def mlflow_operations() -> dict[str, Factory]:
    return {
        "create": _mf_create,
        "version": _mf_version,
        "promote": _mf_promote,
        "search-name": lambda ctx: _mf_search(ctx, lambda i: f"name LIKE '%{WORDS[i % 20]}%'"),
        "search-tag": lambda ctx: _mf_search(ctx, lambda i: f"tags.team = '{TEAMS[i % 20]}'"),
        "get": _mf_get,
        "top10": _mf_top10,
        "per-status": _mf_per_status,
    }


def _api(ctx: Context, path: str) -> str:
    return f"{ctx.base_url}{MLFLOW_API}/{path}"


def _mf_create(ctx: Context) -> Operation:
    async def create(session: aiohttp.ClientSession, i: int) -> None:
        body = {"name": f"new-{ctx.run}-{i}", "tags": [{"key": "team", "value": TEAMS[i % 20]}]}
        await call(session, "POST", _api(ctx, "registered-models/create"), body)

    return create


def _mf_version(ctx: Context) -> Operation:
    """What `mlflow.start_run` + `log_metrics` + `register_model` send: a run, its
    metrics, its end, and a model version pointing at it."""

    async def version(session: aiohttp.ClientSession, i: int) -> None:
        name, now = ctx.model(i).name, int(time.time() * 1000)
        made = await call(
            session,
            "POST",
            _api(ctx, "runs/create"),
            {"experiment_id": ctx.experiment_id, "start_time": now,
             "tags": [{"key": "model_name", "value": name}]},
        )  # fmt: skip
        run_id = made["run"]["info"]["run_id"]
        metrics = [
            {"key": "accuracy", "value": 0.5 + (i % 500) / 1000, "timestamp": now, "step": 0},
            {"key": "loss", "value": 0.1, "timestamp": now, "step": 0},
        ]
        await call(
            session, "POST", _api(ctx, "runs/log-batch"), {"run_id": run_id, "metrics": metrics}
        )
        await call(
            session, "POST", _api(ctx, "runs/update"),
            {"run_id": run_id, "status": "FINISHED", "end_time": now},
        )  # fmt: skip
        await call(
            session, "POST", _api(ctx, "model-versions/create"),
            {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
        )  # fmt: skip

    return version


def _mf_promote(ctx: Context) -> Operation:
    async def promote(session: aiohttp.ClientSession, i: int) -> None:
        alias = f"a{ctx.run}-{i // len(ctx.models)}"
        body = {"name": ctx.model(i).name, "alias": alias, "version": "1"}
        await call(session, "POST", _api(ctx, "registered-models/alias"), body)

    return promote


def _mf_search(ctx: Context, where: Callable[[int], str]) -> Operation:
    async def search(session: aiohttp.ClientSession, i: int) -> None:
        url = _api(ctx, "registered-models/search")
        await call(session, "GET", url, filter=where(i), max_results=100)

    return search


def _mf_get(ctx: Context) -> Operation:
    async def get(session: aiohttp.ClientSession, i: int) -> None:
        await call(session, "GET", _api(ctx, "registered-models/get"), name=ctx.model(i).name)

    return get


def _mf_top10(ctx: Context) -> Operation:
    """Runs sorted by accuracy, then each run's model, until ten models (MLflow ranks
    runs, not models: a model with several good runs shows up several times)."""

    async def top10(session: aiohttp.ClientSession, i: int) -> None:
        body = {
            "experiment_ids": [ctx.experiment_id],
            "order_by": ["metrics.accuracy DESC"],
            "max_results": 50,
        }
        found = await call(session, "POST", _api(ctx, "runs/search"), body)
        ranked: list[str] = []
        for run in found.get("runs", []):
            tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
            name = tags.get("model_name")
            if name and name not in ranked:
                ranked.append(name)
        assert len(ranked) >= min(10, len(ctx.models)), "fewer than ten models ranked"

    return top10


def _mf_per_status(ctx: Context) -> Operation:
    """No count endpoint: every registered model, a page of 1,000 at a time, tallied."""

    async def per_status(session: aiohttp.ClientSession, i: int) -> None:
        counts: Counter[str] = Counter()
        token = None
        while True:
            params: dict[str, object] = {"max_results": 1000}
            if token:
                params["page_token"] = token
            page = await call(session, "GET", _api(ctx, "registered-models/search"), **params)
            for model in page.get("registered_models", []):
                tags = {t["key"]: t["value"] for t in model.get("tags", [])}
                counts[tags.get("status", "none")] += 1
            token = page.get("next_page_token")
            if not token:
                break
        assert sum(counts.values()) >= len(ctx.models)

    return per_status
