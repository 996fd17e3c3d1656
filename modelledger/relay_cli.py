"""`modelledger relay`: the Kafka relay as its own process (SIGTERM: finish the batch, stop)."""

from __future__ import annotations

import asyncio
import signal

import typer

from adapters.kafka import KafkaRelay, RelayOptions
from modelledger.bootstrap import Ledger
from modelledger.cli_support import fail, load_settings, open_ledger


def relay() -> None:
    """Publish every model event, in log order, to Kafka (MODELLEDGER_KAFKA_*)."""
    settings = load_settings()
    if settings.kafka_bootstrap_servers is None:
        fail("set MODELLEDGER_KAFKA_BOOTSTRAP_SERVERS to the Kafka brokers to publish to")
    options = RelayOptions(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.kafka_topic,
        batch_size=settings.relay_batch_size,
        idempotent=settings.kafka_idempotent,
    )
    ledger = open_ledger(settings)
    try:
        asyncio.run(_run(ledger, options))
    finally:
        ledger.close()
    typer.echo("relay stopped", err=True)


async def _run(ledger: Ledger, options: RelayOptions) -> None:
    relay = KafkaRelay(ledger.registry, ledger.write_engine, options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stopping.set)
    typer.echo(f"relaying to {options.bootstrap_servers} topic {options.topic}", err=True)
    await relay.run()
