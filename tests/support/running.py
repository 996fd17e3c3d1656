"""Driving projections in a test: their state, and the real runner one batch at a time."""

from __future__ import annotations

import itertools

from modelledger.bootstrap import Ledger
from projections.base import Projection
from projections.runner import ProjectionRunner, RunnerOptions
from read_model.state import ProjectionState, read_states
from tests.support.histories import head

OWNER = "test-runner"


def states(ledger: Ledger) -> dict[str, ProjectionState]:
    with ledger.read_engine.connect() as conn:
        return read_states(conn)


def settled(state: ProjectionState, at: int) -> bool:
    """At the head, serving, no rebuild pending."""
    return (
        state.position >= at
        and state.status == "running"
        and state.rebuild_generation is None
        and not state.rebuild_requested
    )


def run_projection(
    ledger: Ledger, projection: type[Projection], batch_size: int, batches: int | None = None
) -> None:
    """The real runner, driven one batch per step in this thread, so the batch
    boundaries are the ones hypothesis chose: at most ``batches`` batches, or until
    the projection has settled at the head."""
    options = RunnerOptions(batch_size=batch_size, rebuild_batch_size=batch_size)
    runner = ProjectionRunner(projection, ledger.write_engine, ledger.event_log, OWNER, options)
    try:
        for done in itertools.count():
            if done == batches or settled(states(ledger)[projection.name], head(ledger.registry)):
                return
            assert done < 10_000, f"{projection.name} does not settle"
            runner.step()
    finally:
        runner.stop()  # closes a subscription a rebuild's live steps opened; frees the lease
