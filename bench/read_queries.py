"""Read-side measurements against a filled database: query latency over HTTP, live
projection lag, and statistics/leaderboards from counter tables vs GROUP BY.

Used by ``bench.projections`` (which fills the database and starts the server).
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing as mp
import random
import time
import traceback
import urllib.error
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from queue import Empty
from typing import Any
from urllib.parse import urlencode

import aiohttp
import psutil  # type: ignore[import-untyped]
import psycopg
from psycopg import sql
from rich.progress import Progress
from sqlalchemy import Connection, Engine, text

from bench.load import DRAIN_GRACE_S, REQUEST_TIMEOUT_S, _drain, _event_loop_runner
from bench.report import percentile
from bench.service import BenchError, Server, auth_headers, server_cpu_seconds
from queries.leaderboard import top_performing
from queries.messages import ModelStatistics, TopPerforming
from queries.reading import Snapshot
from queries.statistics import model_statistics
from read_model.state import read_states
from read_model.tables import ALL, CatalogueTables, catalogue_tables, versions_table

JSON_HEADERS = {"Content-Type": "application/json"}
TICK_S = 0.5
# The metric each task's models report (modelledger.seed.metrics_for).
TASK_METRIC = {
    "classification": "accuracy",
    "object-detection": "accuracy",
    "regression": "rmse",
    "text-generation": "perplexity",
    "speech-recognition": "wer",
}
SEARCH_P99_MS = 50.0
AGGREGATE_P99_MS = 20.0
LAG_PROBE = "/api/v1/models/statistics?project=lag-probe"  # cheap; carries X-Position
LAG_POLL_PAUSE_S = 0.005  # between visibility polls: the probes must not load the server


@dataclass(frozen=True)
class Vocabulary:
    """What the generated catalogue holds, so queries ask for things that exist."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    tasks: tuple[str, ...]
    model_ids: tuple[str, ...]
    moments: tuple[str, ...] = ()  # times within the history, for as_of


# --------------------------------------------------------------------------
# Query kinds
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryKind:
    name: str
    paths: tuple[str, ...]  # the clients cycle through these
    goal_p99_ms: float | None


def _path(route: str, **params: Any) -> str:
    query = urlencode([(k, v) for k, v in params.items() if v is not None])
    return f"/api/v1/models{route}" + (f"?{query}" if query else "")


def query_kinds(vocab: Vocabulary, seed: int, variants: int = 400) -> list[QueryKind]:
    """One kind per row of the report; each a list of concrete requests."""
    rng = random.Random(seed)
    words = vocab.words

    def many(make: Callable[[], str]) -> tuple[str, ...]:
        return tuple(make() for _ in range(variants))

    def word_query() -> str:
        picked = rng.sample(words, 2 if rng.random() < 0.25 else 1)
        return " ".join(picked)

    def metric_sort() -> str:
        task = rng.choice((None, *vocab.tasks))
        metric = TASK_METRIC.get(task or "", "accuracy")
        return _path("/search", sort="metric", metric=metric, task=task)

    def top_by_task() -> str:
        task = rng.choice(vocab.tasks)
        return _path("/top-performing", metric=TASK_METRIC.get(task, "accuracy"), task=task)

    ids = vocab.model_ids or ("00000000-0000-0000-0000-000000000000",)
    return [
        QueryKind("search (no filter, by name)", (_path("/search"),), SEARCH_P99_MS),
        QueryKind(
            "search q=word(s)", many(lambda: _path("/search", q=word_query())), SEARCH_P99_MS
        ),
        QueryKind(
            "search task=",
            tuple(_path("/search", task=t) for t in vocab.tasks),
            SEARCH_P99_MS,
        ),
        QueryKind("search tag=", tuple(_path("/search", tag=t) for t in vocab.tags), SEARCH_P99_MS),
        QueryKind("search sort=metric (task= or all)", many(metric_sort), SEARCH_P99_MS),
        QueryKind("statistics", (_path("/statistics"),), AGGREGATE_P99_MS),
        QueryKind(
            "statistics task=",
            tuple(_path("/statistics", task=t) for t in vocab.tasks),
            AGGREGATE_P99_MS,
        ),
        QueryKind(
            "top-performing metric=accuracy",
            (_path("/top-performing", metric="accuracy"),),
            AGGREGATE_P99_MS,
        ),
        QueryKind("top-performing metric= task=", many(top_by_task), AGGREGATE_P99_MS),
        QueryKind("model by id", tuple(_path(f"/{i}") for i in ids), None),
    ]


# --------------------------------------------------------------------------
# Query load generator (a child process, so its CPU is its own)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    base_url: str
    clients: int
    kinds: tuple[QueryKind, ...]
    warmup: float
    duration: float
    cookie: str | None = None  # the web UI's pages: a signed-in session instead of a key


@dataclass
class _Window:
    """One kind's run: only completions inside [measure, stop] count."""

    measure: float
    stop: float
    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    failed: int = 0

    def record(self, started: float, outcome: str | None) -> None:
        finished = time.monotonic()
        inside = self.measure <= finished <= self.stop
        if outcome is None:
            self.ok += 1
            if inside:
                self.latencies.append(finished - started)
        else:
            self.failed += 1
            if inside:
                self.errors[outcome] += 1


async def _query_client(
    session: aiohttp.ClientSession,
    window: _Window,
    base: str,
    paths: Sequence[str],
    first: int,
    step: int,
) -> None:
    index = first
    while time.monotonic() < window.stop:
        path = paths[index % len(paths)]
        index += step
        started = time.monotonic()
        try:
            async with session.get(base + path, allow_redirects=False) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            window.record(started, type(exc).__name__)
            await asyncio.sleep(0.05)
            continue
        window.record(started, None if status == 200 else str(status))


async def _ticker(window: _Window, index: int, queue: Any) -> None:
    while True:
        queue.put(("tick", index, window.ok, window.failed))
        await asyncio.sleep(TICK_S)


async def _generate(cfg: LoadConfig, queue: Any) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=cfg.clients)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    headers = auth_headers()
    if cfg.cookie is not None:
        headers["Cookie"] = f"modelledger_session={cfg.cookie}"
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        for index, kind in enumerate(cfg.kinds):
            measure = time.monotonic() + cfg.warmup
            window = _Window(measure, measure + cfg.duration)
            queue.put(("window", index, window.measure, window.stop))
            ticker = asyncio.create_task(_ticker(window, index, queue))
            offset = random.Random(index).randrange(len(kind.paths))
            tasks = [
                asyncio.create_task(
                    _query_client(
                        session, window, cfg.base_url, kind.paths, offset + c, cfg.clients
                    )
                )
                for c in range(cfg.clients)
            ]
            await _drain(tasks)
            ticker.cancel()
            queue.put(
                (
                    "result",
                    index,
                    {"latencies": window.latencies.tobytes(), "errors": dict(window.errors)},
                )
            )
    return {}


def query_generator_main(cfg: LoadConfig, queue: Any) -> None:
    """Entry point of the generator process; always reports back on ``queue``."""
    try:
        _event_loop_runner()(_generate(cfg, queue))
        queue.put(("done", -1))
    except BaseException:
        queue.put(("fail", -1, traceback.format_exc()))


@dataclass
class QueryResult:
    name: str
    clients: int
    requests: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    server_cpu_pct: float
    database_cpu_pct: float
    goal_p99_ms: float | None


class DatabaseCpu:
    """CPU seconds of the PostgreSQL backends serving one database.

    A backend's process title names its database ("postgres: user dbname host
    state"), so only this run's sessions count, not other users of the server.
    A backend that exits between two samples loses its share (pools keep theirs).
    """

    def __init__(self, dbname: str) -> None:
        self.marker = f" {dbname} "

    def sample(self) -> dict[int, float]:
        taken: dict[int, float] = {}
        for proc in psutil.process_iter(["name"]):
            try:
                if proc.info["name"] != "postgres":
                    continue
                title = " ".join(proc.cmdline()) + " "
                if self.marker in title:
                    times = proc.cpu_times()
                    taken[proc.pid] = times.user + times.system
            except psutil.Error:
                continue
        return taken

    @staticmethod
    def between(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class _CpuWindows:
    """Server and database CPU seconds between each window's edges (sampled as the
    clock crosses them)."""

    def __init__(self, pid: int, database: DatabaseCpu) -> None:
        self.pid, self.database = pid, database
        self.edges: dict[int, list[float]] = {}
        self.samples: dict[int, list[tuple[float, dict[int, float]]]] = {}

    def add(self, index: int, measure: float, stop: float) -> None:
        self.edges[index], self.samples[index] = [measure, stop], []

    def poll(self) -> None:
        now = time.monotonic()
        for index, edges in self.edges.items():
            taken = self.samples[index]
            if len(taken) < 2 and now >= edges[len(taken)]:
                taken.append((server_cpu_seconds(self.pid), self.database.sample()))

    def seconds(self, index: int) -> tuple[float, float]:
        """(server, database) CPU seconds inside the window."""
        taken = self.samples.get(index, [])
        if len(taken) != 2:
            return 0.0, 0.0
        (server0, db0), (server1, db1) = taken
        return server1 - server0, DatabaseCpu.between(db0, db1)


def as_of_kinds(vocab: Vocabulary, seed: int, variants: int = 400) -> list[QueryKind]:
    """The same questions as the registry stood at moments of its history (never cached)."""
    rng = random.Random(seed)

    def many(route: str, make: Callable[[], dict[str, Any]]) -> tuple[str, ...]:
        return tuple(
            _path(route, as_of=rng.choice(vocab.moments), **make()) for _ in range(variants)
        )

    def top() -> dict[str, Any]:
        task = rng.choice(vocab.tasks)
        return {"metric": TASK_METRIC.get(task, "accuracy"), "task": task}

    return [
        QueryKind("as_of search (by name)", many("/search", dict), SEARCH_P99_MS),
        QueryKind(
            "as_of search q=word",
            many("/search", lambda: {"q": rng.choice(vocab.words)}),
            SEARCH_P99_MS,
        ),
        QueryKind(
            "as_of search task=", many("/search", lambda: {"task": rng.choice(vocab.tasks)}), None
        ),
        QueryKind("as_of statistics", many("/statistics", dict), None),
        QueryKind(
            "as_of statistics task=",
            many("/statistics", lambda: {"task": rng.choice(vocab.tasks)}),
            None,
        ),
        QueryKind("as_of top-performing task=", many("/top-performing", top), None),
        QueryKind(
            "as_of deployments (production)",
            tuple(
                f"/api/v1/deployments?{urlencode({'environment': 'production', 'as_of': m})}"
                for m in vocab.moments
            ),
            None,
        ),
    ]


def run_query_load(
    server: Server,
    dbname: str,
    vocab: Vocabulary,
    clients: int,
    warmup: float,
    duration: float,
    seed: int,
    progress: Progress,
    kinds: Sequence[QueryKind] | None = None,
    cookie: str | None = None,
) -> list[QueryResult]:
    """Each query kind in turn: ``clients`` concurrent clients for warm-up + duration."""
    kinds = tuple(kinds or query_kinds(vocab, seed))
    cfg = LoadConfig(server.base_url, clients, kinds, warmup, duration, cookie)
    ctx = mp.get_context("spawn")  # no fork: the parent runs rich's refresh thread
    queue = ctx.Queue()
    proc = ctx.Process(target=query_generator_main, args=(cfg, queue), daemon=True)
    per_kind = warmup + duration
    task = progress.add_task("queries over HTTP", total=len(kinds) * per_kind, stats="starting")
    deadline = time.monotonic() + 60 + len(kinds) * (per_kind + REQUEST_TIMEOUT_S + DRAIN_GRACE_S)
    cpu = _CpuWindows(server.proc.pid, DatabaseCpu(dbname))
    raw: dict[int, dict[str, Any]] = {}
    proc.start()
    try:
        while True:
            if time.monotonic() > deadline:
                raise BenchError("query load generator did not finish in time")
            cpu.poll()
            try:
                msg = queue.get(timeout=0.05)
            except Empty:
                if not proc.is_alive():
                    raise BenchError(f"query load generator exited with {proc.exitcode}") from None
                continue
            kind, index, *payload = msg
            if kind == "window":
                cpu.add(index, payload[0], payload[1])
            elif kind == "tick":
                progress.update(
                    task,
                    completed=index * per_kind + min(per_kind, _since_start(cpu, index, warmup)),
                    stats=f"{kinds[index].name}: ok={payload[0]:,} errors={payload[1]:,}",
                )
            elif kind == "result":
                cpu.poll()
                raw[index] = payload[0]
            elif kind == "done":
                break
            else:
                raise BenchError(f"query load generator failed:\n{payload[0]}")
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()  # our own child, by its handle
            proc.join(timeout=5)
    progress.update(task, completed=len(kinds) * per_kind, stats="done")
    return [
        _query_result(k, clients, duration, raw.get(i), cpu.seconds(i)) for i, k in enumerate(kinds)
    ]


def _since_start(cpu: _CpuWindows, index: int, warmup: float) -> float:
    edges = cpu.edges.get(index)
    return 0.0 if edges is None else max(0.0, time.monotonic() - (edges[0] - warmup))


def _query_result(
    kind: QueryKind,
    clients: int,
    duration: float,
    raw: dict[str, Any] | None,
    cpu_s: tuple[float, float],
) -> QueryResult:
    values = sorted(array("d", raw["latencies"])) if raw else []
    return QueryResult(
        name=kind.name,
        clients=clients,
        requests=len(values),
        seconds=duration,
        per_s=len(values) / duration,
        p50_ms=percentile(values, 0.5) * 1e3,
        p99_ms=percentile(values, 0.99) * 1e3,
        errors=dict(raw["errors"]) if raw else {"no result": 1},
        server_cpu_pct=100 * cpu_s[0] / duration,
        database_cpu_pct=100 * cpu_s[1] / duration,
        goal_p99_ms=kind.goal_p99_ms,
    )


def wait_caught_up(base_url: str, timeout_s: float, progress: Progress) -> None:
    """Until GET /api/v1/admin/projections shows every projection running at lag 0."""
    task = progress.add_task("service: projections lag 0", total=None, stats="")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(
                    f"{base_url}/api/v1/admin/projections", headers=auth_headers()
                ),
                timeout=5,
            ) as resp:
                states = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            states = []
        lags = {s.get("name"): (s.get("lag"), s.get("status")) for s in states}
        progress.update(task, stats=str(lags))
        if states and all(lag == 0 and status == "running" for lag, status in lags.values()):
            progress.update(task, total=1, completed=1)
            return
        time.sleep(0.2)
    raise BenchError(f"projections not caught up after {timeout_s:.0f}s")


# --------------------------------------------------------------------------
# Live projection lag
# --------------------------------------------------------------------------


@dataclass
class LagResult:
    commands: int
    clients: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    timeouts: int
    timeout_s: float
    errors: dict[str, int]
    command_p50_ms: float
    command_p99_ms: float
    poll_p50_ms: float


@dataclass
class _LagState:
    budget: int
    timeout_s: float
    lags: list[float] = field(default_factory=list)
    commands: list[float] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    on_done: Callable[[], None] = lambda: None


async def _visible(
    session: aiohttp.ClientSession, base: str, position: int, state: _LagState
) -> float | None:
    """Seconds until a query answers at ``position`` or later (None: timed out)."""
    since = time.monotonic()
    while time.monotonic() - since < state.timeout_s:
        asked = time.monotonic()
        try:
            async with session.get(base + LAG_PROBE) as resp:
                await resp.read()
                seen = int(resp.headers.get("X-Position", "-1"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            state.errors[f"probe:{type(exc).__name__}"] += 1
            await asyncio.sleep(0.05)
            continue
        now = time.monotonic()
        state.polls.append(now - asked)
        if seen >= position:
            return now - since
        await asyncio.sleep(LAG_POLL_PAUSE_S)
    return None


async def _command(
    session: aiohttp.ClientSession, base: str, path: str, body: dict[str, Any], state: _LagState
) -> dict[str, Any] | None:
    """One command, then wait until it is visible; its answer, or None."""
    if state.budget <= 0:
        return None
    state.budget -= 1
    started = time.monotonic()
    try:
        async with session.post(base + path, data=json.dumps(body), headers=JSON_HEADERS) as resp:
            raw, status = await resp.read(), resp.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        state.errors[type(exc).__name__] += 1
        return None
    state.commands.append(time.monotonic() - started)
    state.on_done()
    if not 200 <= status < 300:
        state.errors[str(status)] += 1
        return None
    answer: dict[str, Any] = json.loads(raw)
    lag = await _visible(session, base, int(answer["position"]), state)
    if lag is None:
        state.timeouts += 1
    else:
        state.lags.append(lag)
    return answer


async def _lag_sender(
    session: aiohttp.ClientSession, base: str, sender: int, state: _LagState
) -> None:
    token = uuid.uuid4().hex[:8]
    rounds = 0
    while state.budget > 0:
        rounds += 1
        created = await _command(
            session,
            base,
            "/api/v1/models",
            {
                "name": f"lag-{token}-{sender}-{rounds}",
                "project": "lag-bench",
                "task": "classification",
                "framework": "pytorch",
                "description": "live lag benchmark",
                "tags": ["bench"],
            },
            state,
        )
        if created is None:
            continue
        model = f"/api/v1/models/{created['id']}"
        run = await _command(session, base, f"{model}/train", {"dataset": "s3://bench/lag"}, state)
        if run is None:
            continue
        await _command(
            session,
            base,
            f"{model}/training-runs/{run['run_id']}/complete",
            {"metrics": {"accuracy": 0.9, "loss": 0.1}},
            state,
        )


async def _lag(base: str, commands: int, clients: int, state: _LagState) -> None:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_headers()) as session:
        await asyncio.gather(*(_lag_sender(session, base, i, state) for i in range(clients)))


def measure_lag(base_url: str, commands: int, clients: int, progress: Progress) -> LagResult:
    """Commands at modest concurrency; each sender waits for its command to be visible
    (a query's X-Position reaching the command's position) before the next."""
    task = progress.add_task("live lag", total=commands, stats="")
    state = _LagState(budget=commands, timeout_s=10.0)
    state.on_done = lambda: progress.advance(task)
    asyncio.run(_lag(base_url, commands, clients, state))
    lags, cmds, polls = sorted(state.lags), sorted(state.commands), sorted(state.polls)
    return LagResult(
        commands=commands,
        clients=clients,
        p50_ms=percentile(lags, 0.5) * 1e3,
        p99_ms=percentile(lags, 0.99) * 1e3,
        max_ms=(lags[-1] if lags else 0.0) * 1e3,
        timeouts=state.timeouts,
        timeout_s=state.timeout_s,
        errors=dict(state.errors),
        command_p50_ms=percentile(cmds, 0.5) * 1e3,
        command_p99_ms=percentile(cmds, 0.99) * 1e3,
        poll_p50_ms=percentile(polls, 0.5) * 1e3,
    )


# --------------------------------------------------------------------------
# Counter tables vs GROUP BY (direct SQL)
# --------------------------------------------------------------------------


@dataclass
class SqlResult:
    question: str
    variant: str
    runs: int
    p50_ms: float
    p99_ms: float
    same_answer: bool | None  # vs the first variant of the question


def statistics_by_group_by(
    conn: Connection, t: CatalogueTables, task: str | None
) -> dict[str, Any]:
    """The statistics answer computed from the catalogue rows at query time."""
    c, m = t.models.name, t.metrics.name
    where = "WHERE c.task = :task" if task else ""
    params = {"task": task} if task else {}
    by: dict[str, dict[str, int]] = {"status": {}, "task": {}, "framework": {}}
    rows = conn.execute(
        text(
            "SELECT c.status, c.task, c.framework, GROUPING(c.status, c.task, c.framework) AS g,"
            f" count(*) AS n FROM {c} c {where}"
            " GROUP BY GROUPING SETS ((c.status), (c.task), (c.framework))"
        ),
        params,
    ).all()
    for status, task_, framework, g, n in rows:
        dimension, key = {3: ("status", status), 5: ("task", task_), 6: ("framework", framework)}[g]
        by[dimension][key] = n
    runs: dict[str, int] = dict(
        conn.execute(
            text(
                f"SELECT r.value->>'state', count(*) FROM {c} c"
                f" CROSS JOIN LATERAL json_each(c.training_runs) AS r {where} GROUP BY 1"
            ),
            params,
        ).all()
    )
    deployments: dict[str, int] = dict(
        conn.execute(
            text(
                f"SELECT e.environment, count(*) FROM {c} c CROSS JOIN LATERAL"
                f" json_object_keys(c.deployments) AS e(environment) {where} GROUP BY 1"
            ),
            params,
        ).all()
    )
    metrics = conn.execute(
        text(
            "SELECT c.metric, sum(c.count), sum(c.total), min(c.min_value), max(c.max_value)"
            f" FROM {m} c {where} GROUP BY c.metric ORDER BY c.metric"
        ),
        params,
    ).all()
    return {
        "total_models": sum(by["status"].values()),
        "by_status": dict(sorted(by["status"].items())),
        "by_task": dict(sorted(by["task"].items())),
        "by_framework": dict(sorted(by["framework"].items())),
        "training_runs": {
            "started": sum(runs.values()),
            "completed": runs.get("completed", 0),
            "failed": runs.get("failed", 0),
        },
        "active_deployments": dict(sorted(deployments.items())),
        "metrics": {
            name: {"count": count, "mean": total / count, "min": low, "max": high}
            for name, count, total, low, high in metrics
        },
    }


def _same_statistics(a: dict[str, Any], b: dict[str, Any]) -> bool:
    exact = ("total_models", "by_status", "by_task", "by_framework", "training_runs")
    if any(a[k] != b[k] for k in exact) or a["active_deployments"] != b["active_deployments"]:
        return False
    if a["metrics"].keys() != b["metrics"].keys():
        return False
    for name, x in a["metrics"].items():
        y = b["metrics"][name]
        if (x["count"], x["min"], x["max"]) != (y["count"], y["min"], y["max"]):
            return False
        if not math.isclose(x["mean"], y["mean"], rel_tol=1e-9):
            return False
    return True


def status_from_counters(conn: Connection, t: CatalogueTables, task: str | None) -> dict[str, int]:
    rows = conn.execute(
        text(
            f"SELECT key, count FROM {t.counts.name} WHERE project = :all AND task = :task"
            " AND dimension = 'status' AND count <> 0"
        ),
        {"all": ALL, "task": task or ALL},
    ).all()
    return {str(key): int(count) for key, count in rows}


def status_by_group_by(conn: Connection, t: CatalogueTables, task: str | None) -> dict[str, int]:
    where = "WHERE task = :task" if task else ""
    rows = conn.execute(
        text(f"SELECT status, count(*) FROM {t.models.name} {where} GROUP BY status"),
        {"task": task} if task else {},
    ).all()
    return {str(key): int(count) for key, count in rows}


def leaderboard_by_group_by(
    conn: Connection,
    t: CatalogueTables,
    versions: str,
    metric: str,
    task: str | None,
    limit: int = 10,
) -> list[tuple[str, int, float]]:
    """Each model's best version from the versions table at query time (higher is better)."""
    task_filter = "AND c.task = :task" if task else ""
    rows = conn.execute(
        text(
            "SELECT id, number, value FROM ("
            " SELECT DISTINCT ON (v.model_id) c.id, c.name, v.number,"
            " (v.metrics->>:metric)::float AS value"
            f" FROM {versions} v JOIN {t.models.name} c ON c.id = v.model_id"
            f" WHERE NOT c.archived AND (v.metrics->>:metric) IS NOT NULL {task_filter}"
            " ORDER BY v.model_id, value DESC, v.number"
            ") best ORDER BY value DESC, name, id LIMIT :limit"
        ),
        {"metric": metric, "task": task, "limit": limit},
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _ranked(answer: dict[str, Any]) -> list[tuple[str, int, float]]:
    return [(i["id"], i["model_version"], i["value"]) for i in answer["items"]]


def _timed(fn: Callable[[], Any], repeat: int, max_seconds: float) -> tuple[list[float], Any]:
    answer = None
    for _ in range(3):  # warm the caches and the plan
        answer = fn()
    times: list[float] = []
    deadline = time.monotonic() + max_seconds
    while len(times) < repeat and time.monotonic() < deadline:
        begun = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - begun)
    return sorted(times), answer


STATUS_INDEXES = (("status",), ("task", "status"))


Plan = list[tuple[str, str, Callable[[], Any]]]
INDEXED = "GROUP BY status, + index " + " & ".join(f"({', '.join(c)})" for c in STATUS_INDEXES)


def _plan(
    conn: Connection, snapshot: Snapshot, t: CatalogueTables, versions: str, task: str
) -> Plan:
    """(question, variant, how) - the first variant of a question is the reference answer."""

    def statistics(scope: str | None) -> dict[str, Any]:
        return model_statistics(snapshot, ModelStatistics(task=scope))

    def leaderboard(scope: str | None) -> list[tuple[str, int, float]]:
        return _ranked(top_performing(snapshot, TopPerforming(metric="accuracy", task=scope)))

    plan: Plan = []
    for scope in (None, task):
        label = f" task={scope}" if scope else " (all)"
        plan += [
            ("statistics" + label, "counter tables (API code)", partial(statistics, scope)),
            (
                "statistics" + label,
                "GROUP BY catalogue (+ json_each)",
                partial(statistics_by_group_by, conn, t, scope),
            ),
        ]
    for scope in (None, task):
        label = f" task={scope}" if scope else " (all)"
        plan += [
            (
                "count by status" + label,
                "counter table",
                partial(status_from_counters, conn, t, scope),
            ),
            (
                "count by status" + label,
                "GROUP BY status, as built",
                partial(status_by_group_by, conn, t, scope),
            ),
            ("count by status" + label, INDEXED, partial(status_by_group_by, conn, t, scope)),
        ]
    for scope in (None, task):
        label = f" task={scope}" if scope else " (all)"
        plan += [
            (
                "top-performing accuracy" + label,
                "leaderboard table (API code)",
                partial(leaderboard, scope),
            ),
            (
                "top-performing accuracy" + label,
                "GROUP BY model over versions",
                partial(leaderboard_by_group_by, conn, t, versions, "accuracy", scope),
            ),
        ]
    return plan


def compare_counters(
    engine: Engine, db_url: str, repeat: int, max_seconds: float, progress: Progress
) -> list[SqlResult]:
    """Each question answered from the projection's tables (the code the API runs)
    and by GROUP BY over the catalogue; p50/p99 over ``repeat`` runs each."""
    task = "classification"
    with engine.connect() as conn:
        states = read_states(conn)
        catalogue, versions = states["catalogue"], states["versions"]
        snapshot = Snapshot(conn, catalogue.generation, catalogue.position)
        t = catalogue_tables(catalogue.generation, "postgresql")
        v = versions_table(versions.generation).name
        plan = _plan(conn, snapshot, t, v, task)
        bar = progress.add_task("counters vs GROUP BY", total=len(plan), stats="")
        results: list[SqlResult] = []
        first: dict[str, Any] = {}
        indexed = False
        try:
            for question, variant, fn in plan:
                if variant == INDEXED and not indexed:
                    conn.rollback()
                    _status_indexes(db_url, t.models.name, create=True)
                    indexed = True
                progress.update(bar, stats=f"{question}: {variant}")
                times, answer = _timed(fn, repeat, max_seconds)
                conn.rollback()  # one snapshot per variant, none held across DDL
                same = None
                if question in first:
                    same = (
                        _same_statistics(first[question], answer)
                        if question.startswith("statistics")
                        else first[question] == answer
                    )
                else:
                    first[question] = answer
                results.append(
                    SqlResult(
                        question,
                        variant,
                        len(times),
                        percentile(times, 0.5) * 1e3,
                        percentile(times, 0.99) * 1e3,
                        same,
                    )
                )
                progress.advance(bar)
        finally:
            conn.rollback()
            if indexed:
                _status_indexes(db_url, t.models.name, create=False)
    return results


def _status_indexes(db_url: str, table: str, create: bool) -> None:
    """Indexes for an index-only GROUP BY status (created for the measurement, then dropped)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i, columns in enumerate(STATUS_INDEXES):
            name = sql.Identifier(f"bench_status_{i}")
            if create:
                conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} ({})").format(
                        name,
                        sql.Identifier(table),
                        sql.SQL(", ").join(map(sql.Identifier, columns)),
                    )
                )
            else:
                conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(name))
        if create:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
