"""Training runs on the openai backend: the real openai SDK against a local server that
speaks the fine-tuning API, the provider worker in between, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

from commands.handlers import handle_sync as handle
from commands.messages import CreateModel, FailTraining, TrainModel
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from queries.operations import open_jobs
from tests.support.fake_openai import FakeOpenAI
from tests.support.ledgers import make_ledger
from tests.support.providers import Clock, event_types, last_event, provider_worker, step_until

SECRET_KEY = "sk-modelledger-test-3f9c1e7a52b84d06"
TRAINING_DATA = b'{"messages": [{"role": "user", "content": "hi"}]}\n' * 10


@pytest.fixture(scope="module")
def openai_api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=SECRET_KEY) as server:
        yield server


@pytest.fixture
def openai_ledger(store_url: str, openai_api: FakeOpenAI, tmp_path: Path) -> Iterator[Ledger]:
    openai_api.reset()
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "chat.jsonl").write_bytes(TRAINING_DATA)
    ledger = make_ledger(
        store_url,
        openai_api_key=openai_api.api_key,
        openai_base_url=openai_api.base_url,
        datasets_dir=datasets,
    )
    yield ledger
    ledger.close()


def start_run(ledger: Ledger, dataset: str = "chat.jsonl", **fields: object) -> tuple[str, str]:
    """A model, and an openai training run of it: (model id, run id)."""
    ctx = CommandContext(actor="alice", correlation_id="corr-1")
    model = handle(
        ledger.registry, CreateModel(name="support-bot", task="chat", framework="openai"), ctx
    )
    train = TrainModel(
        model_id=UUID(model.id),
        dataset=dataset,
        backend="openai",
        base_model="gpt-4o-mini",
        **fields,
    )
    run = handle(ledger.registry, train, ctx)
    return model.id, str(run.details["run_id"])


def finished(ledger: Ledger, model_id: str) -> bool:
    return {"ModelTrained", "TrainingFailed"} & set(event_types(ledger, model_id)) != set()


def test_a_run_is_uploaded_started_followed_and_recorded_with_its_metrics(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    # Given an openai run of a model, with a dataset in the datasets directory
    model_id, run_id = start_run(openai_ledger, hyperparameters={"n_epochs": 2})
    clock = Clock()
    # When the worker works until the run is over
    step_until(
        provider_worker(openai_ledger, clock), clock, lambda: finished(openai_ledger, model_id)
    )
    # Then OpenAI got the file and exactly one job, named for the run
    [job] = openai_api.jobs_for_run(run_id)
    assert openai_api.files[job["training_file"]]["content"] == TRAINING_DATA
    assert job["model"] == "gpt-4o-mini" and ":support-bot:" in job["fine_tuned_model"]
    assert job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
    # And the log tells the story: started, submitted, trained
    assert event_types(openai_ledger, model_id)[-3:] == [
        "TrainingStarted",
        "TrainingJobSubmitted",
        "ModelTrained",
    ]
    trained = last_event(openai_ledger, model_id, "ModelTrained")
    assert trained["data"]["output_model"] == job["fine_tuned_model"]
    assert trained["data"]["metrics"]["train_loss"] == pytest.approx(0.12)
    assert trained["data"]["metrics"]["full_valid_mean_token_accuracy"] == pytest.approx(0.89)
    assert trained["data"]["metrics"]["trained_tokens"] > 0
    assert trained["data"]["artifact_uri"] == f"openai://files/{job['result_files'][0]}"
    # And the worker's events answer the request: its correlation, caused by TrainingStarted
    started = last_event(openai_ledger, model_id, "TrainingStarted")
    assert trained["correlation_id"] == "corr-1"
    assert trained["causation_id"] == f"{model_id}/{started['version']}"
    assert trained["actor"] == "openai-worker"
    assert (
        last_event(openai_ledger, model_id, "TrainingJobSubmitted")["data"]["job_id"] == job["id"]
    )
    # And no job is left open
    with openai_ledger.write_engine.connect() as conn:
        assert open_jobs(conn) == []


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (
            lambda api: api.plan_next_job(
                steps=1,
                outcome="failed",
                error={"code": "invalid_training_file", "message": "line 3 has no messages"},
            ),
            "line 3 has no messages (invalid_training_file)",
        ),
        (
            lambda api: api.reject_next_create(
                400, "model_not_available", "Model gpt-4o-mini is not available", param="model"
            ),
            "OpenAI refused (400): Model gpt-4o-mini is not available",
        ),
        (
            lambda api: api.reject_next_create(429, "insufficient_quota"),
            "OpenAI quota exceeded",
        ),
        (lambda api: api.plan_next_job(steps=1, outcome="cancelled"), "cancelled at OpenAI"),
    ],
    ids=["job-failed", "bad-request", "quota", "cancelled"],
)
def test_what_openai_refuses_ends_the_run_with_openais_reason(
    openai_ledger: Ledger,
    openai_api: FakeOpenAI,
    arrange: Callable[[FakeOpenAI], None],
    reason: str,
) -> None:
    # Given OpenAI will refuse or fail the job
    arrange(openai_api)
    model_id, _ = start_run(openai_ledger)
    clock = Clock()
    # When the worker works on the run
    step_until(
        provider_worker(openai_ledger, clock), clock, lambda: finished(openai_ledger, model_id)
    )
    # Then the run failed, with what OpenAI said
    failed = last_event(openai_ledger, model_id, "TrainingFailed")
    assert reason in failed["data"]["reason"]
    assert "ModelTrained" not in event_types(openai_ledger, model_id)


def test_a_dataset_outside_the_datasets_directory_fails_the_run_and_uploads_nothing(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    model_id, _ = start_run(openai_ledger, dataset="../../etc/passwd")
    clock = Clock()
    step_until(
        provider_worker(openai_ledger, clock), clock, lambda: finished(openai_ledger, model_id)
    )
    reason = last_event(openai_ledger, model_id, "TrainingFailed")["data"]["reason"]
    assert "neither an OpenAI file id nor a file in the datasets directory" in reason
    assert openai_api.files_created == 0


def test_server_errors_are_retried_with_a_growing_pause(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    # Given OpenAI answers its next 3 requests with 500
    openai_api.fail_next_requests(3, status=500)
    model_id, run_id = start_run(openai_ledger)
    clock = Clock()
    worker = provider_worker(openai_ledger, clock, first_check_seconds=2, max_pause_seconds=60)
    # When the worker steps three times, each time after the pause it chose
    pauses = []
    for _ in range(3):
        worker.step()
        with openai_ledger.write_engine.connect() as conn:
            [job] = open_jobs(conn)
        pauses.append(round(job["due_at"] - clock()))
        assert "OpenAI answered 500" in job["last_error"]
        clock.skip(job["due_at"] - clock())
    # Then each pause doubled, and the run is still on
    assert pauses == [2, 4, 8]
    assert "TrainingFailed" not in event_types(openai_ledger, model_id)
    # And once OpenAI answers again, the run completes with one job
    step_until(worker, clock, lambda: finished(openai_ledger, model_id))
    assert "ModelTrained" in event_types(openai_ledger, model_id)
    assert len(openai_api.jobs_for_run(run_id)) == 1


def test_a_refused_api_key_is_retried_not_blamed_on_the_run(
    store_url: str, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    # Given a registry whose OpenAI key is wrong
    ledger = make_ledger(
        store_url,
        openai_api_key="sk-rotated-away-0000",
        openai_base_url=openai_api.base_url,
        datasets_dir=tmp_path,
    )
    try:
        (tmp_path / "chat.jsonl").write_bytes(TRAINING_DATA)
        model_id, _ = start_run(ledger)
        clock = Clock()
        worker = provider_worker(ledger, clock)
        # When the worker tries three times
        for _ in range(3):
            worker.step()
            clock.skip(worker.options.max_pause_seconds)
        # Then the run is still on, waiting for an operator, with a reason that quotes no key
        assert "TrainingFailed" not in event_types(ledger, model_id)
        with ledger.write_engine.connect() as conn:
            [job] = open_jobs(conn)
        assert job["checks"] == 3
        assert job["last_error"] == "OpenAI refused the API key (401); check OPENAI_API_KEY"
    finally:
        ledger.close()


def test_a_job_that_runs_too_long_is_cancelled_and_the_run_fails(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    openai_api.hang_jobs(True)
    model_id, run_id = start_run(openai_ledger)
    clock = Clock()
    worker = provider_worker(openai_ledger, clock, training_timeout_seconds=600)
    step_until(worker, clock, lambda: finished(openai_ledger, model_id))
    reason = last_event(openai_ledger, model_id, "TrainingFailed")["data"]["reason"]
    assert reason == "timed out: not finished 600 s after it was requested"
    [job] = openai_api.jobs_for_run(run_id)
    assert job["status"] == "cancelled"


def test_a_worker_that_dies_mid_job_is_replaced_and_no_second_job_is_started(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    # Given a worker that submitted the job and checked it once, then died holding a lease
    openai_api.plan_next_job(steps=4)
    model_id, run_id = start_run(openai_ledger)
    clock = Clock()
    first = provider_worker(openai_ledger, clock, owner="first", lease_seconds=30)
    first.step()  # submits
    clock.skip(60)
    first.step()  # checks: running
    with openai_ledger.write_engine.begin() as conn:  # dies in its next step, lease held
        conn.exec_driver_sql(
            "UPDATE provider_jobs SET lease_owner = 'first', lease_until = %s, due_at = 0"
            % (clock() + 30)
        )
    # When another worker (a restarted process) starts, from nothing but the log and the table
    second = provider_worker(openai_ledger, clock, owner="second", lease_seconds=30)
    asked = len(openai_api.requests)
    second.step()
    # Then it leaves the job alone while the lease holds
    assert len(openai_api.requests) == asked
    # And takes it over once the lease ran out, following the same job to the end
    clock.skip(31)
    step_until(second, clock, lambda: finished(openai_ledger, model_id))
    assert len(openai_api.jobs_for_run(run_id)) == 1
    assert openai_api.jobs_created == 1
    assert last_event(openai_ledger, model_id, "ModelTrained")["data"]["metrics"]


def test_a_job_created_but_never_recorded_is_found_again_not_created_twice(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    # Given OpenAI creates the job but its answer is lost (a crash right after, a cut line)
    openai_api.lose_next_create_response()
    model_id, run_id = start_run(openai_ledger)
    clock = Clock()
    # When the worker tries again
    step_until(
        provider_worker(openai_ledger, clock), clock, lambda: finished(openai_ledger, model_id)
    )
    # Then it found the job by the run's id: one job, and the run is trained
    assert openai_api.jobs_created == 1
    assert len(openai_api.jobs_for_run(run_id)) == 1
    assert "ModelTrained" in event_types(openai_ledger, model_id)


def test_the_api_key_is_in_no_log_line_and_no_event(
    openai_ledger: Ledger, openai_api: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # Given everything logged, the SDKs' debug lines included
    caplog.set_level(logging.DEBUG)
    openai_api.fail_next_requests(1)  # a retry logs the error too
    model_id, _ = start_run(openai_ledger)
    clock = Clock()
    step_until(
        provider_worker(openai_ledger, clock), clock, lambda: finished(openai_ledger, model_id)
    )
    assert "ModelTrained" in event_types(openai_ledger, model_id)
    # Then the key is nowhere in the log or in any stored event
    assert caplog.records and SECRET_KEY not in caplog.text
    stored = openai_ledger.registry.recorder.select_notifications(start=1, limit=10_000)
    assert stored and not any(SECRET_KEY.encode() in n.state for n in stored)


def test_a_run_failed_through_the_api_has_its_job_cancelled_and_is_followed_no_more(
    openai_ledger: Ledger, openai_api: FakeOpenAI
) -> None:
    # Given a submitted job
    openai_api.hang_jobs(True)
    model_id, run_id = start_run(openai_ledger)
    clock = Clock()
    worker = provider_worker(openai_ledger, clock)
    worker.step()
    [job] = openai_api.jobs_for_run(run_id)
    # When someone records the run as failed through the API
    failing = FailTraining(model_id=UUID(model_id), run_id=run_id, reason="wrong data, stopped")
    handle(openai_ledger.registry, failing, CommandContext(actor="alice"))
    asked = len(openai_api.requests)
    worker.step()
    # Then the worker cancelled the job at OpenAI (nobody pays for it any more) and closed it
    assert openai_api.requests[asked:] == [("POST", f"/v1/fine_tuning/jobs/{job['id']}/cancel")]
    assert openai_api.jobs[job["id"]]["status"] == "cancelled"
    with openai_ledger.write_engine.connect() as conn:
        assert open_jobs(conn) == []
    # And it asks OpenAI nothing more about it, nor records anything
    clock.skip(3600)
    worker.step()
    assert len(openai_api.requests) == asked + 1
    assert event_types(openai_ledger, model_id).count("TrainingFailed") == 1
