"""The load generator: N HTTP clients looping create -> train -> complete -> deploy,
run in child processes so its CPU is its own."""

from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.service import auth_headers

COMMANDS = ("create", "train", "complete", "deploy")
JSON_HEADERS = {"Content-Type": "application/json"}
# A request slower than this is an error; it also bounds how long a run can
# overrun its window while in-flight requests drain.
REQUEST_TIMEOUT_S = 30.0
DRAIN_GRACE_S = 10.0
TICK_S = 0.5
PROBE_INTERVAL_S = 0.05


# --------------------------------------------------------------------------
# Load generator (runs in child processes)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GenConfig:
    """What one generator process needs; monotonic clock is system-wide on Linux."""

    index: int
    base_url: str
    clients: int
    client_offset: int
    start_at: float
    measure_at: float
    stop_at: float


@dataclass
class Recorder:
    """Collects outcomes; only completions inside the window count."""

    measure_at: float
    stop_at: float
    latencies: dict[str, array[float]] = field(
        default_factory=lambda: {c: array("d") for c in COMMANDS}
    )
    errors: Counter[str] = field(default_factory=Counter)
    outside_errors: Counter[str] = field(default_factory=Counter)
    # GET /api/info latencies: an async endpoint with no I/O, so its latency is
    # how long the server's event loop keeps requests waiting under load.
    probe: array[float] = field(default_factory=lambda: array("d"))
    live_ok: int = 0
    live_errors: int = 0

    def record(self, kind: str, started: float, outcome: str | None) -> None:
        finished = time.monotonic()
        if outcome is None:
            self.live_ok += 1
        else:
            self.live_errors += 1
        in_window = self.measure_at <= finished <= self.stop_at
        if outcome is None:
            if in_window:
                self.latencies[kind].append(finished - started)
        elif in_window:
            self.errors[f"{kind}:{outcome}"] += 1
        else:
            # Warm-up and drain failures do not skew the numbers but are shown.
            self.outside_errors[f"{kind}:{outcome}"] += 1


async def _post(
    session: aiohttp.ClientSession,
    rec: Recorder,
    kind: str,
    url: str,
    body: dict[str, Any],
) -> dict[str, Any] | None:
    """One command; returns the JSON body on 2xx, else records why and returns None."""
    if time.monotonic() >= rec.stop_at:
        return None
    started = time.monotonic()
    try:
        async with session.post(url, data=json.dumps(body), headers=JSON_HEADERS) as resp:
            status, raw = resp.status, await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        rec.record(kind, started, type(exc).__name__)
        await asyncio.sleep(0.05)  # a dead server must not turn this into a CPU spin
        return None
    if not 200 <= status < 300:
        rec.record(kind, started, str(status))
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        rec.record(kind, started, "bad-json")
        return None
    rec.record(kind, started, None)
    return data


def _field(data: dict[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    return None if value is None else str(value)


async def _cycle(session: aiohttp.ClientSession, rec: Recorder, base: str, name: str) -> None:
    """create -> train -> complete -> deploy; a failed step abandons the chain."""
    created = await _post(
        session,
        rec,
        "create",
        f"{base}/api/v1/models",
        {
            "name": name,
            "project": "bench",
            "task": "classification",
            "framework": "sklearn",
            "description": "benchmark model",
            "tags": ["bench"],
        },
    )
    model_id = _field(created, "id")
    if model_id is None:
        return
    model_url = f"{base}/api/v1/models/{model_id}"
    trained = await _post(
        session,
        rec,
        "train",
        f"{model_url}/train",
        {
            "dataset": "datasets/bench.csv",
            "hyperparameters": {"lr": 0.01, "epochs": 3},
        },
    )
    run_id = _field(trained, "run_id")
    if run_id is None:
        return
    completed = await _post(
        session,
        rec,
        "complete",
        f"{model_url}/training-runs/{run_id}/complete",
        {"metrics": {"accuracy": 0.91, "loss": 0.2}},
    )
    if completed is not None:
        await _post(session, rec, "deploy", f"{model_url}/deploy", {"environment": "production"})


async def _client(session: aiohttp.ClientSession, rec: Recorder, cfg: GenConfig, cid: int) -> None:
    cycle = 0
    while time.monotonic() < rec.stop_at:
        name = f"bench-{os.getpid()}-{cid}-{cycle}"
        await _cycle(session, rec, cfg.base_url, name)
        cycle += 1


async def _probe(rec: Recorder, cfg: GenConfig) -> None:
    """Every PROBE_INTERVAL_S, time one GET /api/info (not counted as a command).

    Its own session: the clients' connection pool is always full, and waiting
    for a free connection there would be measured as server latency.
    """
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        await _probe_loop(session, rec, cfg)


async def _probe_loop(session: aiohttp.ClientSession, rec: Recorder, cfg: GenConfig) -> None:
    while time.monotonic() < rec.stop_at:
        started = time.monotonic()
        try:
            async with session.get(f"{cfg.base_url}/api/info") as resp:
                await resp.read()
                ok = resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        finished = time.monotonic()
        if ok and rec.measure_at <= finished <= rec.stop_at:
            rec.probe.append(finished - started)
        await asyncio.sleep(PROBE_INTERVAL_S)


async def _ticker(rec: Recorder, cfg: GenConfig, queue: Any) -> None:
    """Cumulative counters for the parent's progress display."""
    while True:
        queue.put(("tick", cfg.index, rec.live_ok, rec.live_errors))
        await asyncio.sleep(TICK_S)


async def _generate(cfg: GenConfig, queue: Any) -> dict[str, Any]:
    rec = Recorder(cfg.measure_at, cfg.stop_at)
    connector = aiohttp.TCPConnector(limit=cfg.clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=auth_headers()
    ) as session:
        await asyncio.sleep(max(0.0, cfg.start_at - time.monotonic()))
        ticker = asyncio.create_task(_ticker(rec, cfg, queue))
        cpu_start, cpu_stop = (
            _cpu_sample_at(cfg.measure_at),
            _cpu_sample_at(cfg.stop_at),
        )
        tasks = [
            asyncio.create_task(_client(session, rec, cfg, cfg.client_offset + i))
            for i in range(cfg.clients)
        ]
        if cfg.index == 0:
            tasks.append(asyncio.create_task(_probe(rec, cfg)))
        cpu_s = await cpu_stop - await cpu_start
        await _drain(tasks)
        ticker.cancel()
    return _gen_result(rec, cpu_s)


def _cpu_sample_at(instant: float) -> asyncio.Future[float]:
    """Process CPU time at `instant`, so warm-up and drain are not charged."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[float] = loop.create_future()
    delay = max(0.0, instant - time.monotonic())
    loop.call_later(delay, lambda: fut.set_result(time.process_time()))
    return fut


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    """Let in-flight requests finish (bounded), then cancel what is left."""
    _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + DRAIN_GRACE_S)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


def _gen_result(rec: Recorder, cpu_s: float) -> dict[str, Any]:
    return {
        "latencies": {k: v.tobytes() for k, v in rec.latencies.items()},
        "errors": dict(rec.errors),
        "outside_errors": dict(rec.outside_errors),
        "probe": rec.probe.tobytes(),
        "cpu_s": cpu_s,
    }


def generator_main(cfg: GenConfig, queue: Any) -> None:
    """Entry point of a generator process; always reports back on `queue`."""
    runner = _event_loop_runner()
    try:
        result = runner(_generate(cfg, queue))
        queue.put(("done", cfg.index, result))
    except BaseException:
        queue.put(("fail", cfg.index, traceback.format_exc()))


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]]:
    """uvloop when available: its event loop costs less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
