"""Driving the provider worker in a test: a clock the test moves, steps until a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from modelledger.bootstrap import Ledger
from processes.provider_worker import ProviderWorker, WorkerOptions
from queries.models import model_history


@dataclass
class Clock:
    """Real time plus what the test skipped ahead (event times are real)."""

    skipped: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


def provider_worker(
    ledger: Ledger, clock: Clock, owner: str = "test-worker", **options: Any
) -> ProviderWorker:
    """A worker on the ledger's providers, stepped by the test (no thread)."""
    return ProviderWorker(
        ledger.registry,
        ledger.write_engine,
        owner=owner,
        trainers=ledger.providers.trainers,
        deployers=ledger.providers.deployers,
        options=WorkerOptions(**options),
        clock=clock,
    )


def step_until(
    worker: ProviderWorker, clock: Clock, done: Callable[[], bool], steps: int = 40
) -> int:
    """Step, skipping past every pause, until ``done``: the number of steps it took."""
    for taken in range(1, steps + 1):
        worker.step()
        if done():
            return taken
        clock.skip(worker.options.max_pause_seconds)
    raise AssertionError(f"not done after {steps} steps")


def event_types(ledger: Ledger, model_id: str | UUID) -> list[str]:
    return [item["type"] for item in model_history(ledger.event_log, UUID(str(model_id)))]


def last_event(ledger: Ledger, model_id: str | UUID, kind: str) -> dict[str, Any]:
    """The newest event of ``kind``: its history item (data, actor, causation...)."""
    items = model_history(ledger.event_log, UUID(str(model_id)))
    return next(item for item in reversed(items) if item["type"] == kind)
