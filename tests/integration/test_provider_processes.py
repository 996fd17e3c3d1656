"""The provider worker as users run it: inside `serve` (the embedded default) and as
`modelledger worker` beside an API process; each killed in the middle of a job."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.auth import TEST_ADMIN_KEY
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import ApiProcess, ModelLedgerProcess, free_port

pytestmark = pytest.mark.slow

DATA = b'{"messages": [{"role": "user", "content": "hello"}]}\n' * 5


@pytest.fixture
def openai_api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def environment(workdir: Path, openai_api: FakeOpenAI, **extra: str) -> dict[str, str]:
    (workdir / "var" / "datasets").mkdir(parents=True, exist_ok=True)
    (workdir / "var" / "datasets" / "chat.jsonl").write_bytes(DATA)
    return {
        "MODELLEDGER_DATA_DIR": str(workdir / "var"),
        "MODELLEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
        "OPENAI_API_KEY": openai_api.api_key,
        "OPENAI_BASE_URL": openai_api.base_url,
        "MODELLEDGER_WORKER_MAX_PAUSE_SECONDS": "0.3",
        "MODELLEDGER_WORKER_LEASE_SECONDS": "2",
        **extra,
    }


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_openai_run(api: ApiProcess) -> tuple[str, str]:
    with api.client() as client:
        model = client.post(
            "/api/v1/models", json={"name": "bot", "task": "chat", "framework": "openai"}
        )
        model_id = model.json()["id"]
        run = client.post(
            f"/api/v1/models/{model_id}/train",
            json={"dataset": "chat.jsonl", "backend": "openai", "base_model": "gpt-4o-mini"},
        )
        assert run.status_code == 202, run.text
        return model_id, run.json()["run_id"]


def history(api: ApiProcess, model_id: str) -> list[dict[str, Any]]:
    with api.client() as client:
        items: list[dict[str, Any]] = client.get(f"/api/v1/models/{model_id}/history").json()[
            "items"
        ]
        return items


def kinds(api: ApiProcess, model_id: str) -> list[str]:
    return [item["type"] for item in history(api, model_id)]


def providers_health(api: ApiProcess) -> dict[str, Any]:
    with api.client() as client:
        found: dict[str, Any] = client.get("/health/detailed").json()["providers"]
        return found


def serve(workdir: Path, env: dict[str, str], name: str = "serve") -> ApiProcess:
    port = free_port()
    env = {**env, "MODELLEDGER_PORT": str(port)}
    return ApiProcess(["serve"], env, workdir, name, port, TEST_ADMIN_KEY)


def test_serve_runs_the_job_itself_and_resumes_it_after_a_kill(
    tmp_path: Path, openai_api: FakeOpenAI
) -> None:
    # Given the embedded default, `serve` alone, with OpenAI configured
    openai_api.plan_next_job(steps=12)
    env = environment(tmp_path, openai_api)
    api = serve(tmp_path, env)
    api.start()
    try:
        api.wait_healthy()
        model_id, run_id = start_openai_run(api)
        # When it is killed once the job is submitted and being followed
        wait_for(lambda: "TrainingJobSubmitted" in kinds(api, model_id), "the job's submission")
        wait_for(lambda: len(openai_api.requests) > 6, "a few checks of the job")
        api.kill()
        [job] = openai_api.jobs_for_run(run_id)
        assert job["status"] != "succeeded", "the job ended before the kill: nothing to resume"
        # And started again
        api = serve(tmp_path, env, "serve-again")
        api.start()
        api.wait_healthy()
        # Then it follows the same job to its end and records the version
        wait_for(lambda: "ModelTrained" in kinds(api, model_id), "the run's completion")
        assert kinds(api, model_id).count("TrainingJobSubmitted") == 1
    finally:
        api.stop()
    assert openai_api.jobs_created == 1 and len(openai_api.jobs_for_run(run_id)) == 1


def test_a_worker_process_beside_the_api_carries_out_the_job(
    tmp_path: Path, openai_api: FakeOpenAI
) -> None:
    # Given an API process that leaves provider jobs to a `modelledger worker`
    openai_api.plan_next_job(steps=8)
    env = environment(tmp_path, openai_api, MODELLEDGER_PROVIDER_WORKER="false")
    api = serve(tmp_path, env)
    api.start()
    worker = ModelLedgerProcess(["worker"], env, tmp_path, "worker")
    try:
        api.wait_healthy()
        model_id, _ = start_openai_run(api)
        time.sleep(1.0)
        # Then nothing happens at OpenAI until a worker runs, and health says it is behind
        assert openai_api.jobs_created == 0
        before = providers_health(api)
        assert before["trainers"] == ["openai"] and before["worker_in_this_process"] is False
        assert before["worker_lag"] > 0
        worker.start()
        wait_for(lambda: "TrainingJobSubmitted" in kinds(api, model_id), "the job's submission")
        # When the worker is killed mid-job and another one starts
        worker.kill()
        worker = ModelLedgerProcess(["worker"], env, tmp_path, "worker-again").start()
        wait_for(lambda: "ModelTrained" in kinds(api, model_id), "the run's completion")
        # Then the run was trained through the one job, and the worker stops cleanly
        assert openai_api.jobs_created == 1
        trained = history(api, model_id)[-1]
        assert trained["type"] == "ModelTrained" and trained["actor"] == "openai-worker"
        # And health shows the worker caught up, nothing open
        caught_up = lambda: providers_health(api)["worker_lag"] == 0  # noqa: E731
        wait_for(caught_up, "the worker to take in its own events")
        assert providers_health(api)["open_jobs"] == 0
        assert worker.stop() == 0, worker.output()
    finally:
        worker.stop()
        api.stop()
