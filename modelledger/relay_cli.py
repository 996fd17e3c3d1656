"""`modelledger relay`: the Kafka relay as its own process (SIGTERM: finish the batch, stop)."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import typer

from modelledger.bootstrap import Ledger
from modelledger.cli_support import fail, load_settings, open_ledger
from processes.kafka_relay import KafkaRelay, RelayOptions

if TYPE_CHECKING:  # imported in the command: every other command (serve too) skips aiokafka
    from adapters.kafka import KafkaPublisher


def relay() -> None:
    """Publish every model event, in log order, to Kafka (MODELLEDGER_KAFKA_*)."""
    from adapters.kafka import KafkaOptions, KafkaPublisher

    settings = load_settings()
    if settings.kafka_bootstrap_servers is None:
        fail("set MODELLEDGER_KAFKA_BOOTSTRAP_SERVERS to the Kafka brokers to publish to")
    kafka = KafkaOptions(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.kafka_topic,
        idempotent=settings.kafka_idempotent,
    )
    ledger = open_ledger(settings)
    try:
        asyncio.run(_run(ledger, KafkaPublisher(kafka), settings.relay_batch_size))
    finally:
        ledger.close()
    typer.echo("relay stopped", err=True)


async def _run(ledger: Ledger, publisher: KafkaPublisher, batch_size: int) -> None:
    options = RelayOptions(batch_size=batch_size)
    relay = KafkaRelay(ledger.event_log, ledger.write_engine, publisher, options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stopping.set)
    typer.echo(f"relaying to {publisher.destination}", err=True)
    await relay.run()
