"""`modelledger worker`: the provider worker as its own process (SIGTERM: finish the step, stop)."""

from __future__ import annotations

import signal
import threading

import typer

from modelledger.cli_support import load_settings, open_ledger
from modelledger.logs import configure_logging


def worker() -> None:
    """Carry out provider training runs and deployments (OpenAI, Hugging Face).

    Run it beside API processes started with MODELLEDGER_PROVIDER_WORKER=false; two
    workers may run, each job is worked by one at a time (a lease)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    ledger = open_ledger(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        running = ledger.start_provider_worker()
        providers = ledger.providers
        offered = [*providers.trainers, *(f"deploy:{d}" for d in providers.deployers)]
        doing = ", ".join(offered) or "no provider configured"
        typer.echo(f"provider worker {running.owner} running ({doing}); SIGTERM stops it", err=True)
        stop.wait()
    finally:
        ledger.close()  # the worker finishes the job step in hand, then frees its lease
    typer.echo("provider worker stopped", err=True)
