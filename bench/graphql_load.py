"""The two ways of reading for ``bench.graphql``: a model's page and a search, each as
REST calls and as one GraphQL operation; the closed-loop driver that times them; and
the check that both give the same data, so the comparison is of equal work."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import psutil  # type: ignore[import-untyped]
from rich.progress import Progress

from bench.history import WORDS
from bench.read_queries import DatabaseCpu
from bench.report import percentile
from bench.service import BenchError, auth_headers
from modelledger.seed import TAGS, TASKS

API = "/api/v1/models"
PAGE = 20  # a model page's events, a search's hits
JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT_S = 30.0
TICK_S = 0.5


# What a model's page shows: the fields REST's three answers carry that a page uses.
PAGE_QUERY = """
query($id: ID!) { model(id: $id) { id name version description tags status
  bestMetrics { metric value modelVersion }
  versions { number metrics { name value } description tags
    trainingRun { runId dataset hyperparameters } }
  deployments { current { environment modelVersion endpointUrl }
    history { environment modelVersion fromTime toTime } }
  history(first: 20) { nodes { position type timestamp actor } } } }
"""

# Every field of REST's search hit (its summary view), so both carry the same.
SEARCH_QUERY = """
query($q: String, $task: String, $tags: [String!], $first: Int) {
  models(q: $q, task: $task, tags: $tags, first: $first) {
    nodes { id name version project description task framework tags owner status
      createdAt updatedAt latestVersion bestMetrics { metric value modelVersion }
      serving { environment modelVersion endpointUrl } }
    pageInfo { endCursor hasNextPage } } }
"""


class Refused(Exception):
    """An answer that is not the data asked for (a status, or GraphQL errors)."""


def _header_bytes(response: aiohttp.ClientResponse) -> int:
    # Status line and headers as sent (name: value CRLF): three answers carry three sets.
    line = len(f"HTTP/1.1 {response.status} {response.reason}\r\n")
    return line + sum(len(k) + len(v) + 4 for k, v in response.raw_headers) + 2


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise Refused(f"GET {response.status}")
        return _header_bytes(response) + len(body), body


async def _post_graphql(
    session: aiohttp.ClientSession, base: str, query: str, variables: dict[str, Any]
) -> tuple[int, int, bytes]:
    payload = orjson.dumps({"query": query, "variables": variables})
    async with session.post(f"{base}/graphql", data=payload, headers=JSON_HEADERS) as response:
        body = await response.read()
        if response.status != 200:
            raise Refused(f"POST /graphql {response.status}")
        # Parsing every answer would cost this side more than REST's (never parsed):
        # only one that may hold errors is.
        if b'"errors"' in body and orjson.loads(body).get("errors"):
            raise Refused(f"GraphQL errors: {orjson.loads(body)['errors'][0].get('message')}")
        return _header_bytes(response) + len(body), len(payload), body


# An operation: (session, base URL, argument) -> (bytes received, body bytes sent).
Call = Callable[[aiohttp.ClientSession, str, Any], Awaitable[tuple[int, int]]]


async def rest_page(
    session: aiohttp.ClientSession, base: str, model_id: str, bodies: list[bytes] | None = None
) -> tuple[int, int]:
    # One after another, as a client that awaits each answer does: the baseline.
    received, url = 0, f"{base}{API}/{model_id}"
    for path in ("", "/deployments", f"/history?limit={PAGE}"):
        size, body = await _get(session, url + path)
        received += size
        if bodies is not None:
            bodies.append(body)
    return received, 0


async def graphql_page(session: aiohttp.ClientSession, base: str, model_id: str) -> tuple[int, int]:
    received, sent, _ = await _post_graphql(session, base, PAGE_QUERY, {"id": model_id})
    return received, sent


def _search_url(base: str, search: dict[str, Any]) -> str:
    params = [(k, v) for k, v in search.items() if k != "tags" and v is not None]
    params += [("tag", t) for t in search.get("tags") or ()]
    return f"{base}{API}/search?{urlencode([*params, ('limit', PAGE)])}"


async def rest_search(
    session: aiohttp.ClientSession, base: str, search: dict[str, Any]
) -> tuple[int, int]:
    received, _ = await _get(session, _search_url(base, search))
    return received, 0


async def graphql_search(
    session: aiohttp.ClientSession, base: str, search: dict[str, Any]
) -> tuple[int, int]:
    variables = {**search, "first": PAGE}
    received, sent, _ = await _post_graphql(session, base, SEARCH_QUERY, variables)
    return received, sent


def searches(seed: int, variants: int = 400) -> list[dict[str, Any]]:
    """Words of the generated names and descriptions (bench.history), alone or with a
    task, and a task with a tag: half, a quarter, a quarter."""
    rng = random.Random(seed)
    made: list[dict[str, Any]] = []
    for _ in range(variants):
        kind = rng.random()
        words = " ".join(rng.sample(WORDS, 2 if rng.random() < 0.25 else 1))
        if kind < 0.5:
            made.append({"q": words})
        elif kind < 0.75:
            made.append({"q": words, "task": rng.choice(tuple(TASKS))})
        else:
            made.append({"task": rng.choice(tuple(TASKS)), "tags": [rng.choice(TAGS)]})
    return made


# --------------------------------------------------------------------------
# The driver: closed loop, N clients, warm-up then a measured window
# --------------------------------------------------------------------------


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)  # seconds, in the window
    received: int = 0
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    done: int = 0  # every completion, warm-up too (for the progress line)
    cpu: dict[str, float] = field(default_factory=dict)  # server, database, bench seconds
    workers: list[float] = field(default_factory=list)  # each server process's CPU, busiest first


async def closed_loop(
    call: Call,
    base: str,
    picks: Sequence[Any],
    clients: int,
    warmup: float,
    duration: float,
    seed: int,
    server_pid: int,
    database: DatabaseCpu,
    progress: Progress,
    label: str,
) -> Window:
    """Each client sends its next request when its last is answered. Only requests
    begun after the warm-up and answered within the window count; CPU is sampled at
    the window's edges."""
    window = Window()
    start = time.monotonic()
    measure_at, stop_at = start + warmup, start + warmup + duration
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    # Clients join one by one over the first half of the warm-up, each on its own
    # connection: a worker accepts every connection that arrives while it is idle, so
    # connections opened all at once may all land on one worker, and the run measures
    # one core (the split is reported).
    stagger = warmup / 2 / clients

    async def client(n: int) -> None:
        rng = random.Random(seed * 1_000 + n)
        await asyncio.sleep(n * stagger)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), headers=auth_headers(), timeout=timeout
        ) as session:
            await _loop(session, rng)

    async def _loop(session: aiohttp.ClientSession, rng: random.Random) -> None:
        while (begun := time.monotonic()) < stop_at:
            outcome = None
            try:
                received, sent = await call(session, base, rng.choice(picks))
            except (Refused, aiohttp.ClientError, TimeoutError) as error:
                outcome = f"{type(error).__name__}: {error}"
            ended = time.monotonic()
            window.done += 1
            if begun < measure_at or ended > stop_at:
                continue
            if outcome is not None:
                window.errors[outcome] += 1
                continue
            window.latencies.append(ended - begun)
            window.received += received
            window.sent += sent

    def cpu_now() -> tuple[dict[int, float], float, float, float]:
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - machine.iowait
        db = sum(database.sample().values())
        return server_cpu(server_pid), db, time.process_time(), busy

    async def edges() -> None:
        task = progress.add_task(label, total=warmup + duration, stats="")
        first: tuple[dict[int, float], float, float, float] | None = None
        while (now := time.monotonic()) < stop_at:
            if first is None and now >= measure_at:
                first = cpu_now()
            rate = len(window.latencies) / max(now - measure_at, 1e-9) if first else 0.0
            stats = f"{window.done:,} done  {rate:,.0f}/s  errors {sum(window.errors.values())}"
            progress.update(task, completed=now - start, stats=stats)
            await asyncio.sleep(TICK_S)
        last = cpu_now()
        if first is not None:
            each = [cpu - first[0].get(pid, cpu) for pid, cpu in last[0].items()]
            window.workers = sorted(each, reverse=True)
            window.cpu = {"server": sum(each), "database": last[1] - first[1]}
            window.cpu["bench"] = last[2] - first[2]
            # Whatever else ran on the machine meanwhile (someone's tests): a sign of noise.
            window.cpu["others"] = last[3] - first[3] - sum(window.cpu.values())
        progress.update(task, completed=warmup + duration)

    await asyncio.gather(edges(), *(client(n) for n in range(clients)))
    window.latencies.sort()
    return window


def server_cpu(server_pid: int) -> dict[int, float]:
    """CPU seconds of the server and each of its processes (uvicorn's workers)."""
    taken = {}
    with suppress(psutil.Error):
        root = psutil.Process(server_pid)
        for proc in (root, *root.children(recursive=True)):
            with suppress(psutil.Error):
                taken[proc.pid] = sum(proc.cpu_times()[:2])
    return taken


def summary(window: Window, duration: float) -> dict[str, float]:
    values, n = window.latencies, max(len(window.latencies), 1)
    per_item = {k: v * 1e3 / n for k, v in window.cpu.items()}  # ms of CPU per item
    return {
        "items": len(values),
        "per_s": len(values) / duration,
        **{f"p{q}_ms": percentile(values, q / 100) * 1e3 for q in (50, 95, 99)},
        "received": window.received / n,
        "sent": window.sent / n,
        **{f"{k}_cpu_ms": per_item.get(k, 0.0) for k in ("server", "database", "bench")},
        "others_cpu_pct": window.cpu.get("others", 0.0) * 100 / duration,
        "errors": sum(window.errors.values()),
        # The busiest server process's share of the server's CPU: 0.5 is two even workers.
        "busiest_share": window.workers[0] / max(sum(window.workers), 1e-9)
        if window.workers
        else 0,
    }


# --------------------------------------------------------------------------
# Same data both ways
# --------------------------------------------------------------------------


SCALARS = ("id", "name", "version", "description", "tags", "status")
VERSION = ("number", "description", "tags")
RUN = ("run_id", "dataset", "hyperparameters")
SERVING = ("environment", "model_version", "endpoint_url")
STRETCH = ("environment", "model_version", "from_time", "to_time")
EVENT = ("position", "type", "timestamp", "actor")
HIT = ("id", "name", "version", "status", "owner", "updated_at")
# Compared as instants: the two ways may write the same time differently.
TIMES = {"from_time", "to_time", "timestamp", "updated_at"}


def _pick(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(
        datetime.fromisoformat(item[k]) if k in TIMES and item[k] else item.get(k) for k in keys
    )


def _snake(value: Any) -> Any:
    """GraphQL's camelCase names as REST's snake_case, to pick fields alike."""
    if isinstance(value, dict):
        return {re.sub(r"([A-Z])", r"_\1", k).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


def _page_from_rest(bodies: list[bytes]) -> tuple[Any, ...]:
    model, deployments, history = (orjson.loads(b) for b in bodies)
    runs = {r["run_id"]: _pick(r, RUN) for r in model["training_runs"]}
    versions = [{"description": "", "tags": [], **v} for v in model["versions"]]
    return (
        _pick(model, SCALARS),
        sorted((m, b["value"], b["model_version"]) for m, b in model["best_metrics"].items()),
        [
            (*_pick(v, VERSION), sorted(v["metrics"].items()), runs.get(v["run_id"]))
            for v in versions
        ],
        sorted(_pick(s, SERVING) for s in deployments["current"].values()),
        [_pick(s, STRETCH) for s in deployments["history"]],
        [_pick(e, EVENT) for e in history["items"]],
    )


def _page_from_graphql(body: bytes) -> tuple[Any, ...]:
    model = _snake(orjson.loads(body)["data"]["model"])
    versions = [
        (*_pick(v, VERSION), sorted(_pick(m, ("name", "value")) for m in v["metrics"]), run)
        for v in model["versions"]
        for run in [v["training_run"] and _pick(v["training_run"], RUN)]
    ]
    return (
        _pick(model, SCALARS),
        sorted(_pick(b, ("metric", "value", "model_version")) for b in model["best_metrics"]),
        versions,
        sorted(_pick(s, SERVING) for s in model["deployments"]["current"]),
        [_pick(s, STRETCH) for s in model["deployments"]["history"]],
        [_pick(e, EVENT) for e in model["history"]["nodes"]],
    )


def _hits_from_rest(body: bytes) -> tuple[list[Any], str | None]:
    answer = orjson.loads(body)
    hits = [
        (
            _pick(i, HIT),
            sorted((m, b["value"]) for m, b in i["best_metrics"].items()),
            sorted((e, d["model_version"]) for e, d in i["deployments"].items()),
        )
        for i in answer["items"]
    ]
    return hits, answer["next_cursor"]


def _hits_from_graphql(body: bytes) -> tuple[list[Any], str | None]:
    answer = _snake(orjson.loads(body)["data"]["models"])
    hits = [
        (
            _pick(i, HIT),
            sorted(_pick(b, ("metric", "value")) for b in i["best_metrics"]),
            sorted(_pick(s, ("environment", "model_version")) for s in i["serving"]),
        )
        for i in answer["nodes"]
    ]
    return hits, answer["page_info"]["end_cursor"]


async def same_data(
    base: str, model_ids: Sequence[str], asked: Sequence[dict[str, Any]]
) -> tuple[int, int]:
    """Ask both ways and compare, field by field; raise at the first difference.
    Returns how many pages and searches were compared (and found non-empty)."""
    pages = hits = 0
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        for model_id in model_ids:
            bodies: list[bytes] = []
            await rest_page(session, base, model_id, bodies)
            _, _, body = await _post_graphql(session, base, PAGE_QUERY, {"id": model_id})
            rest, graph = _page_from_rest(bodies), _page_from_graphql(body)
            if rest != graph:
                parts = ("scalars", "best", "versions", "current", "stretches", "events")
                differ = [n for n, r, g in zip(parts, rest, graph, strict=True) if r != g]
                raise BenchError(f"model {model_id}: REST and GraphQL differ in {differ}")
            pages += 1
        for search in asked:
            _, body = await _get(session, _search_url(base, search))
            rest_hits = _hits_from_rest(body)
            variables = {**search, "first": PAGE}
            _, _, body = await _post_graphql(session, base, SEARCH_QUERY, variables)
            if rest_hits != _hits_from_graphql(body):
                raise BenchError(f"search {search}: REST and GraphQL found different models")
            hits += bool(rest_hits[0])
    return pages, hits
