"""The webhook deliverer in a thread of the test process (its own event loop), on a
test's ledger, with a compressed retry schedule and local targets allowed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from adapters.webhook_http import HttpEndpoints
from modelledger.bootstrap import Ledger
from processes.webhooks.deliverer import Deliverer, DelivererOptions
from processes.webhooks.schedule import parse_schedule


@contextmanager
def delivering(
    ledger: Ledger,
    schedule: str = "0,0.2,0.4",
    *,
    allow_private: bool = True,
    timeout_seconds: float = 5.0,
) -> Iterator[Deliverer]:
    options = DelivererOptions(
        schedule=parse_schedule(schedule),
        poll_seconds=0.05,
        lease_seconds=timeout_seconds + 5,
    )
    endpoints = HttpEndpoints(timeout_seconds, allow_private)
    deliverer = Deliverer(ledger.registry, ledger.write_engine, endpoints, ledger.sealer(), options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(deliverer.run(),), name="deliverer", daemon=True
    )
    thread.start()
    try:
        yield deliverer
    finally:
        loop.call_soon_threadsafe(deliverer.stopping.set)
        thread.join(timeout=30)
        loop.close()
