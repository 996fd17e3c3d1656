"""`modelledger deliver`: the webhook deliverer as its own process (SIGTERM: finish the
attempts in flight, stop)."""

from __future__ import annotations

import asyncio
import signal

import typer

from modelledger.bootstrap import Ledger
from modelledger.cli_support import load_settings, open_ledger
from modelledger.logs import configure_logging


def deliver() -> None:
    """Deliver the log's events to the webhook subscriptions.

    Run it beside API processes started with MODELLEDGER_WEBHOOKS=false. Two may run:
    each page of the log is queued once, and each delivery is sent by one (a lease)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    ledger = open_ledger(settings)
    try:
        asyncio.run(_run(ledger))
    finally:
        ledger.close()
    typer.echo("webhook deliverer stopped", err=True)


async def _run(ledger: Ledger) -> None:
    deliverer = ledger.webhook_deliverer()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, deliverer.stopping.set)
    typer.echo(f"webhook deliverer {deliverer.owner} running; SIGTERM stops it", err=True)
    await deliverer.run()
