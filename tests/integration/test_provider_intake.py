"""The provider worker's intake: requests in the log become jobs, exactly once, even when
two workers read the same page (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from commands.handlers import handle_sync as handle
from commands.messages import CompleteDeployment, CompleteTraining, DeployModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from processes.provider_intake import LogIntake
from queries.operations import open_jobs
from tests.support.ledgers import make_ledger
from tests.support.story import Story


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    built = make_ledger(store_url)
    yield built
    built.close()


def deploy_request(ledger: Ledger, model_id: UUID) -> str:
    asked = handle(
        ledger.registry,
        DeployModel(model_id=model_id, environment="prod", target="huggingface"),
        CommandContext(),
    )
    return str(asked.details["request_id"])


def test_a_page_two_workers_read_is_taken_in_once_and_a_newer_request_stays_open(
    ledger: Ledger,
) -> None:
    # Given a request carried out, then a second request for the same environment
    story = Story(ledger.registry).a_model().a_trained_version()
    first = deploy_request(ledger, story.id)
    done = CompleteDeployment(model_id=story.id, request_id=first, endpoint_name="ep")
    handle(ledger.registry, done, CommandContext())
    second = deploy_request(ledger, story.id)
    one, other = (
        LogIntake(ledger.event_log, ledger.write_engine),
        LogIntake(ledger.event_log, ledger.write_engine),
    )
    one.ensure_tables()
    # When both workers read the same page, and one takes it in first
    late = other.read()
    assert late is not None
    assert one.take_in() > 0
    # Then the other's copy changes nothing: the second request is still open
    assert other.apply(late) is False
    with ledger.write_engine.connect() as conn:
        assert [job["id"] for job in open_jobs(conn)] == [second]
    # And there is nothing more to take in
    assert one.take_in() == 0 and other.take_in() == 0


def test_events_of_no_interest_move_the_position_too(ledger: Ledger) -> None:
    # Given a log of external runs only
    story = Story(ledger.registry).a_model().a_training_run()
    handle(
        ledger.registry,
        CompleteTraining(model_id=story.id, run_id=story.run, metrics={"accuracy": 0.9}),
        CommandContext(),
    )
    intake = LogIntake(ledger.event_log, ledger.write_engine)
    intake.ensure_tables()
    # When it is taken in
    moved = intake.take_in()
    # Then no job is opened, and the position is the log's head (no lag)
    assert moved == ledger.log_head()
    with ledger.write_engine.connect() as conn:
        assert open_jobs(conn) == []
