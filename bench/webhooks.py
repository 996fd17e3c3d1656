"""Webhook deliveries while commands flow: events delivered per second, and the time from
a command's answer to its delivery's arrival at the receiver (p50, p99).

Usage (from the repository root; PostgreSQL on loopback for the postgres backend)::

    .venv/bin/python -m bench.webhooks --backends sqlite,postgres --subscriptions 10 \\
        --clients 16 --duration 20

Starts `serve` on a fresh store (the deliverer in its process, the embedded default; with
``--deliverer process``, `serve` with MODELLEDGER_WEBHOOKS=false beside `modelledger
deliver`), and a receiver in this process that checks every delivery's signature with the
`standardwebhooks` library. It subscribes the receiver ``--subscriptions`` times, then
clients create models for ``--duration`` seconds. Every event goes to every subscription.
Progress goes to stderr; the Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from bench import topology
from bench.report import percentile
from bench.service import (
    Server,
    auth_headers,
    check_loopback_pg,
    free_port,
    fresh_database,
    running_server,
)
from bench.topology import client


@dataclass
class Tally(topology.Tally):
    """The creates' answers (as bench.topology counts them), and each delivery's arrival."""

    delivered: dict[tuple[str, int], float] = field(default_factory=dict)  # (secret, position)
    unverified: int = 0
    repeats: int = 0


@dataclass
class Receiver:
    tally: Tally
    verifiers: dict[str, Webhook] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        headers = dict(request.headers)
        secret = next((s for s, v in self.verifiers.items() if _verifies(v, body, headers)), None)
        if secret is None:
            self.tally.unverified += 1
        else:
            key = (secret, orjson.loads(body)["data"].get("position", 0))
            if key in self.tally.delivered:
                self.tally.repeats += 1
            self.tally.delivered.setdefault(key, arrived)
        return web.Response(text="ok")


def _verifies(verifier: Webhook, body: bytes, headers: dict[str, str]) -> bool:
    try:
        verifier.verify(body, {k.lower(): v for k, v in headers.items()})
    except WebhookVerificationError:
        return False
    return True


@contextmanager
def store(backend: str, pg_url: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'ledger.sqlite'}"
    else:
        with fresh_database(pg_url) as url:
            yield url


async def paced(
    session: aiohttp.ClientSession, base: str, rate: float, tally: Tally, until: float
) -> None:
    """Open loop: a create every 1/rate seconds, whether the last was answered or not."""
    names, started = itertools.count(), time.monotonic()
    sent: list[asyncio.Task[None]] = []
    while (now := time.monotonic()) < until:
        due = started + len(sent) / rate
        if due > now:
            await asyncio.sleep(due - now)
        sent.append(asyncio.create_task(one_create(session, base, next(names), tally)))
    await asyncio.gather(*sent)


async def one_create(session: aiohttp.ClientSession, base: str, n: int, tally: Tally) -> None:
    body = {"name": f"m{n}", "task": "classification", "framework": "pytorch"}
    async with session.post(f"{base}/api/v1/models", json=body) as response:
        if response.status == 201:
            tally.answered[(await response.json())["position"]] = time.time()
        else:
            tally.errors += 1


async def drive(api: Server, receiver_port: int, args: argparse.Namespace) -> dict[str, float]:
    tally = Tally()
    receiver = Receiver(tally)
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
    connector = aiohttp.TCPConnector(limit=args.clients + 4 if not args.rate else 200)
    async with aiohttp.ClientSession(connector=connector, headers=auth_headers()) as session:
        for n in range(args.subscriptions):
            url = f"http://127.0.0.1:{receiver_port}/hooks"
            body = {"url": url, "description": f"bench {n}"}
            async with session.post(f"{api.base_url}/api/v1/admin/webhooks", json=body) as made:
                assert made.status == 201, await made.text()
                secret = (await made.json())["secret"]
                receiver.verifiers[secret] = Webhook(secret)
        names = itertools.count()
        started = time.monotonic()
        until = started + args.warmup + args.duration
        if args.rate:
            loads = [paced(session, api.base_url, args.rate, tally, until)]
        else:
            loads = [
                client(session, api.base_url, names, tally, until) for _ in range(args.clients)
            ]
        progress = asyncio.create_task(report_progress(tally, until, args.subscriptions))
        await asyncio.sleep(args.warmup)
        measured_since, warm = time.time(), len(tally.answered)
        await asyncio.gather(*loads)
        progress.cancel()
    measured = len(tally.answered) - warm
    expected = {(s, p) for s in receiver.verifiers for p in tally.answered}
    drain_until = time.monotonic() + 120
    while expected - set(tally.delivered) and time.monotonic() < drain_until:
        await asyncio.sleep(0.2)
    await runner.cleanup()
    delays = sorted(
        (arrived - tally.answered[position]) * 1000
        for (_, position), arrived in tally.delivered.items()
        if position in tally.answered and tally.answered[position] >= measured_since
    )
    times = sorted(t for (_, p), t in tally.delivered.items() if p in tally.answered)
    window = (times[-1] - times[0]) if len(times) > 1 else 1.0
    return {
        "commands_per_s": measured / args.duration,
        "deliveries_per_s": len(times) / window,
        "p50_ms": percentile(delays, 0.5),
        "p99_ms": percentile(delays, 0.99),
        "missing": float(len(expected - set(tally.delivered))),
        "unverified": float(tally.unverified),
        "repeats": float(tally.repeats),
        "errors": float(tally.errors),
    }


async def report_progress(tally: Tally, until: float, subscriptions: int) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(2)
        print(
            f"  answered {len(tally.answered)}, delivered {len(tally.delivered)} of "
            f"{len(tally.answered) * subscriptions}, errors {tally.errors}",
            file=sys.stderr,
        )


def run(backend: str, args: argparse.Namespace) -> dict[str, float]:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ml-webhooks-")))
        url = stack.enter_context(store(backend, args.pg_url, workdir))
        env = {"MODELLEDGER_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true"}
        if args.deliverer == "process":
            env["MODELLEDGER_WEBHOOKS"] = "false"
        (workdir / "api").mkdir()
        api = stack.enter_context(running_server(url, 1, workdir / "api", 60, env))
        if args.deliverer == "process":
            (workdir / "deliver").mkdir()
            # The API's secrets key, so the deliverer opens what the API sealed.
            key = (workdir / "api" / "data" / "secrets.key").read_text().strip()
            deliver_env = {**env, "MODELLEDGER_SECRETS_KEY": key}
            stack.enter_context(
                running_server(url, 1, workdir / "deliver", 60, deliver_env, ("deliver",))
            )
        print(f"{backend}: serve up, deliverer {args.deliverer}", file=sys.stderr)
        return asyncio.run(drive(api, free_port(), args))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.webhooks", description=__doc__.splitlines()[0]
    )
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--deliverer", choices=("in-process", "process"), default="in-process")
    p.add_argument("--subscriptions", type=int, default=10)
    p.add_argument("--clients", type=int, default=16, help="closed loop: clients at once")
    p.add_argument(
        "--rate", type=float, default=0.0, help="open loop: creates per second (0: closed loop)"
    )
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    args = p.parse_args(argv)
    backends = args.backends.split(",")
    if "postgres" in backends:
        check_loopback_pg(args.pg_url)
    results = {backend: run(backend, args) for backend in backends}
    print(
        "| store | deliverer | subscriptions | clients | commands/s | deliveries/s | "
        "answer -> receiver p50 ms | p99 ms | missing | unverified | repeats | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    load = f"{args.rate:g}/s open" if args.rate else f"{args.clients} clients"
    for backend, r in results.items():
        print(
            f"| {backend} | {args.deliverer} | {args.subscriptions} | {load} | "
            f"{r['commands_per_s']:,.1f} | {r['deliveries_per_s']:,.1f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['missing']:.0f} | {r['unverified']:.0f} | "
            f"{r['repeats']:.0f} | {r['errors']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
