"""One story that records every event type of AIModel and ApiKey, with fixed ids and
metadata, through the aggregates' own methods (no command handlers, no projections).

``tests/fixtures/events-v2.jsonl`` is this story as the code before the decorator-style
aggregate (issue 18, item 7) stored it, and ``events-v2-folded.json`` what folding those
events gave each aggregate then. ``tests/integration/test_stored_topics.py`` loads the
file with today's code and compares the fold, and plays the story again to compare what
today's code stores. Write the fixtures again only for a new event type, never to make
a difference go away:

    .venv/bin/python -m tests.support.every_event
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate

from commands.archive import export_events
from commands.registry import CommandContext, ModelRegistry
from tests.support.ledgers import make_ledger
from write_model.access import Role
from write_model.api_key import ApiKey
from write_model.model import AIModel
from write_model.values import EventMetadata

FIXTURES = Path(__file__).parent.parent / "fixtures"
EVENTS = FIXTURES / "events-v2.jsonl"
FOLDED = FIXTURES / "events-v2-folded.json"
PROJECT = "fixtures"
ISSUED_KEY = UUID("00000000-0000-4000-8000-000000000001")
REVOKED_KEY = UUID("00000000-0000-4000-8000-000000000002")


def metadata(actor: str) -> Iterator[EventMetadata]:
    """A fresh correlation and causation for each command, as the API gives them."""
    for n in count(1):
        yield EventMetadata(actor, f"correlation-{actor}-{n}", f"command-{actor}-{n}")


def the_whole_life(meta: Iterator[EventMetadata]) -> AIModel:
    """Registered, re-described, trained three ways, deployed, rolled back, served by a
    provider, taken down, and archived with a run still going."""
    model = AIModel.register(
        name="whole-life", project=PROJECT, task="classification", framework="pytorch",
        description="every event", tags=["cv"], configuration={"layers": 3},
        owner="grace", meta=next(meta),
    )  # fmt: skip
    model.update({"description": "every event, once", "tags": ["cv", "gpu"]}, next(meta))
    model.start_training(
        run_id="run-1", dataset="d1", hyperparameters={"lr": 0.1}, backend="external",
        meta=next(meta),
    )  # fmt: skip
    model.complete_training(
        run_id="run-1", metrics={"accuracy": 0.8, "loss": 0.5}, artifact_uri="s3://m/1",
        meta=next(meta),
    )  # fmt: skip
    model.start_training(
        run_id="run-2", dataset="d2", hyperparameters={}, backend="openai",
        base_model="gpt-4o-mini", meta=next(meta),
    )  # fmt: skip
    model.record_training_job(run_id="run-2", job_id="ftjob-2", meta=next(meta))
    model.complete_training(
        run_id="run-2", metrics={"accuracy": 0.9}, artifact_uri=None,
        output_model="ft:gpt-4o-mini:acme::2", by_backend=True, meta=next(meta),
    )  # fmt: skip
    model.start_training(
        run_id="run-3", dataset="d3", hyperparameters={}, backend="external", meta=next(meta)
    )
    model.fail_training(run_id="run-3", reason="out of memory", meta=next(meta))
    for version in (1, 2):
        url = f"https://v{version}.example/"
        model.deploy(
            environment="staging", model_version=version, endpoint_url=url, meta=next(meta)
        )
    model.roll_back(environment="staging", meta=next(meta))
    model.request_deployment(
        request_id="request-1", environment="production", model_version=2, target="openai",
        meta=next(meta),
    )  # fmt: skip
    model.fail_deployment(request_id="request-1", reason="quota", meta=next(meta))
    model.request_deployment(
        request_id="request-2", environment="production", model_version=None,
        target="openai", meta=next(meta),
    )  # fmt: skip
    model.complete_deployment(
        request_id="request-2", endpoint_url="https://prod.example/", endpoint_name="ep-2",
        meta=next(meta),
    )  # fmt: skip
    model.request_undeployment(request_id="request-3", environment="production", meta=next(meta))
    model.complete_deployment(
        request_id="request-3", endpoint_url=None, endpoint_name="ep-2", meta=next(meta)
    )
    model.undeploy(environment="staging", meta=next(meta))
    model.start_training(
        run_id="run-4", dataset="d4", hyperparameters={}, backend="external", meta=next(meta)
    )
    model.archive(reason="retired", meta=next(meta))
    return model


def an_imported_model_still_served(meta: Iterator[EventMetadata]) -> AIModel:
    model = AIModel.register(
        name="imported", project=PROJECT, task="asr", framework="transformers",
        meta=next(meta),
    )  # fmt: skip
    model.import_version(
        run_id="import-1", source="huggingface", dataset="hub", metrics={"wer": 0.12},
        output_model="acme/whisper-ft", artifact_uri="hf://acme/whisper-ft", meta=next(meta),
    )  # fmt: skip
    model.deploy(environment="canary", model_version=1, endpoint_url=None, meta=next(meta))
    return model


def a_model_in_training(meta: Iterator[EventMetadata]) -> AIModel:
    model = AIModel.register(
        name="in-training", project=PROJECT, task="regression", framework="sklearn",
        meta=next(meta),
    )  # fmt: skip
    model.start_training(
        run_id="run-1", dataset="d1", hyperparameters={"depth": 4}, backend="external",
        meta=next(meta),
    )  # fmt: skip
    return model


def keys(meta: Iterator[EventMetadata]) -> list[ApiKey]:
    issued = ApiKey.issue(
        key_id=ISSUED_KEY, name="ci", role=Role.EDITOR, projects=["b", "a", "a"],
        secret_sha256="0" * 64, meta=next(meta),
    )  # fmt: skip
    revoked = ApiKey.issue(
        key_id=REVOKED_KEY, name="old", role=Role.VIEWER, projects=None,
        secret_sha256="1" * 64, meta=next(meta),
    )  # fmt: skip
    revoked.revoke(next(meta))
    return [issued, revoked]


def play(registry: ModelRegistry) -> None:
    """Store the story: each aggregate's events in one append, in this order."""
    meta = metadata("fixture")
    aggregates = [
        the_whole_life(meta),
        an_imported_model_still_served(meta),
        a_model_in_training(meta),
        *keys(meta),
    ]
    for aggregate in aggregates:
        registry.commit(aggregate, CommandContext(actor="fixture"))


def folded(registry: ModelRegistry) -> dict[str, dict[str, Any]]:
    """Each aggregate in the store, folded from its events, as plain JSON."""
    states: dict[str, dict[str, Any]] = {}
    for notification in registry.recorder.select_notifications(start=1, limit=1_000):
        aggregate_id = notification.originator_id
        if str(aggregate_id) not in states:
            stored = registry.recorder.select_events(aggregate_id)
            events = map(registry.mapper.to_domain_event, stored)
            states[str(aggregate_id)] = folded_state(project_aggregate(None, events))
    return states


def folded_state(aggregate: Any) -> dict[str, Any]:
    """Every attribute the fold gave the aggregate (its id, version and times too)."""
    state = {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}
    plain: dict[str, Any] = json.loads(json.dumps(state, default=_plain, sort_keys=True))
    return plain


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime | UUID):
        return str(value)
    raise TypeError(f"no JSON form for {value!r}")


def main() -> None:
    ledger = make_ledger("memory://")
    try:
        play(ledger.registry)
        with EVENTS.open("w") as out:
            export_events(ledger.event_log, out, progress=lambda _: None)
        FOLDED.write_text(json.dumps(folded(ledger.registry), indent=1, sort_keys=True) + "\n")
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
