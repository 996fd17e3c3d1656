"""Deploying to Hugging Face Inference Endpoints: the request over HTTP, the provider worker
carrying it out with the real huggingface_hub SDK against a local server."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.huggingface import HubEndpoints
from modelledger.bootstrap import Ledger
from processes.provider_worker import ProviderWorker
from queries.operations import open_jobs
from tests.e2e.problems import assert_problem
from tests.support.auth import api_client
from tests.support.fake_hub import FakeHub
from tests.support.ledgers import make_ledger
from tests.support.providers import Clock, event_types, last_event, provider_worker, step_until

IMPORT = "/api/v1/models/import/huggingface"
SECRET_TOKEN = "hf_modelledger_test_8d41c0f2e9b7a356"


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with FakeHub(token=SECRET_TOKEN) as server:
        yield server


def hub_ledger(store_url: str, hub: FakeHub, **settings: Any) -> Ledger:
    return make_ledger(
        store_url,
        hf_endpoint=hub.url,
        hf_endpoints_url=hub.endpoints_url,
        hf_token=hub.token,
        **settings,
    )


@pytest.fixture
def deploying(store_url: str, hub: FakeHub) -> Iterator[tuple[TestClient, Ledger]]:
    hub.plan_endpoints(steps_to_running=2)
    ledger = hub_ledger(store_url, hub)
    with api_client(ledger) as client:
        yield client, ledger
    ledger.close()


def imported(client: TestClient, hub: FakeHub, repo_id: str) -> str:
    hub.add_model(repo_id)
    response = client.post(IMPORT, json={"repo_id": repo_id})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def settled(ledger: Ledger, model_id: str, outcome: str, count: int = 1) -> Any:
    return lambda: event_types(ledger, model_id).count(outcome) == count


def test_a_deploy_creates_an_endpoint_and_is_recorded_once_it_runs(
    deploying: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, ledger = deploying
    model_id = imported(client, hub, "acme/deploy-me")
    # When version 1 is deployed to production on Hugging Face
    asked = client.post(
        f"/api/v1/models/{model_id}/deploy",
        json={"environment": "production", "target": "huggingface"},
    )
    # Then the request is accepted, pending
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "pending" and asked.json()["model_version"] == 1
    clock = Clock()
    step_until(provider_worker(ledger, clock), clock, settled(ledger, model_id, "ModelDeployed"))
    # And once the endpoint runs, the deployment is recorded with its URL
    deployed = last_event(ledger, model_id, "ModelDeployed")
    name = deployed["data"]["endpoint_name"]
    endpoint = hub.endpoints[name]
    assert endpoint["model"]["repository"] == "acme/deploy-me"
    assert endpoint["model"]["revision"] == hub.model_sha("acme/deploy-me")
    assert deployed["data"]["endpoint_url"] == f"{hub.url}/inference/{name}"
    assert deployed["data"]["target"] == "huggingface"
    assert deployed["causation_id"] == f"{model_id}/{deployed['version'] - 1}"
    model = client.get(
        f"/api/v1/models/{model_id}", params={"min_position": deployed["position"]}
    ).json()
    assert model["status"] == "deployed" and model["pending_deployments"] == {}
    assert model["deployments"]["production"]["endpoint_url"] == deployed["data"]["endpoint_url"]


def test_deploying_a_new_version_updates_the_endpoint_and_undeploy_deletes_it(
    deploying: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, ledger = deploying
    model_id = imported(client, hub, "acme/two-versions")
    deploy = {"environment": "staging", "target": "huggingface"}
    clock = Clock()
    worker = provider_worker(ledger, clock)
    client.post(f"/api/v1/models/{model_id}/deploy", json=deploy)
    step_until(worker, clock, settled(ledger, model_id, "ModelDeployed"))
    # Given a second version (new results on the Hub, imported again)
    new_sha = hub.update_model(
        "acme/two-versions",
        eval_results=[
            {
                "task_type": "text-classification",
                "dataset_type": "imdb",
                "dataset_name": "IMDb",
                "metric_type": "accuracy",
                "metric_value": 0.97,
            }
        ],
    )
    assert client.post(IMPORT, json={"repo_id": "acme/two-versions"}).json()["model_version"] == 2
    # When it is deployed to the same environment
    assert client.post(f"/api/v1/models/{model_id}/deploy", json=deploy).status_code == 202
    step_until(worker, clock, settled(ledger, model_id, "ModelDeployed", 2))
    # Then the same endpoint now serves the new revision
    second = last_event(ledger, model_id, "ModelDeployed")
    assert (second["data"]["model_version"], second["data"]["previous_version"]) == (2, 1)
    assert len(hub.endpoints) >= 1
    assert hub.endpoints[second["data"]["endpoint_name"]]["model"]["revision"] == new_sha
    # When it is undeployed
    gone = client.post(f"/api/v1/models/{model_id}/undeploy", json={"environment": "staging"})
    assert gone.status_code == 202 and gone.json()["status"] == "pending"
    step_until(worker, clock, settled(ledger, model_id, "ModelUndeployed"))
    # Then the endpoint is deleted and the environment is free
    assert second["data"]["endpoint_name"] not in hub.endpoints
    assert last_event(ledger, model_id, "ModelUndeployed")["data"]["model_version"] == 2


def test_undeploy_pauses_the_endpoint_when_so_configured(store_url: str, hub: FakeHub) -> None:
    ledger = hub_ledger(store_url, hub, hf_undeploy="pause", hf_namespace="acme-org")
    with api_client(ledger) as client:
        model_id = imported(client, hub, "acme/pause-me")
        client.post(
            f"/api/v1/models/{model_id}/deploy",
            json={"environment": "prod", "target": "huggingface"},
        )
        clock = Clock()
        worker = provider_worker(ledger, clock)
        step_until(worker, clock, settled(ledger, model_id, "ModelDeployed"))
        client.post(f"/api/v1/models/{model_id}/undeploy", json={"environment": "prod"})
        step_until(worker, clock, settled(ledger, model_id, "ModelUndeployed"))
        name = last_event(ledger, model_id, "ModelDeployed")["data"]["endpoint_name"]
        assert hub.endpoints[name]["status"]["state"] == "paused"
        assert ("POST", f"/endpoints/v2/endpoint/acme-org/{name}/pause") in hub.requests
    ledger.close()


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (
            lambda hub: hub.plan_endpoints(
                steps_to_running=1, outcome="failed", message="model failed to load"
            ),
            "model failed to load",
        ),
        (lambda hub: hub.reject_next_create(402), "the Hub refused (402)"),
    ],
    ids=["endpoint-failed", "no-payment-method"],
)
def test_what_the_provider_refuses_is_recorded_as_a_failed_deployment(
    deploying: tuple[TestClient, Ledger], hub: FakeHub, arrange: Any, reason: str
) -> None:
    client, ledger = deploying
    model_id = imported(client, hub, f"acme/refused-{len(hub.endpoints)}")
    arrange(hub)
    client.post(
        f"/api/v1/models/{model_id}/deploy", json={"environment": "prod", "target": "huggingface"}
    )
    clock = Clock()
    step_until(provider_worker(ledger, clock), clock, settled(ledger, model_id, "DeploymentFailed"))
    failed = last_event(ledger, model_id, "DeploymentFailed")
    assert reason in failed["data"]["reason"]
    model = client.get(f"/api/v1/models/{model_id}", params={"min_position": failed["position"]})
    assert model.json()["deployments"] == {} and model.json()["pending_deployments"] == {}
    # And no endpoint is left behind to pay for
    assert endpoint_of(ledger, model_id, "prod") not in hub.endpoints
    hub.plan_endpoints(steps_to_running=2)


def endpoint_of(ledger: Ledger, model_id: str, environment: str) -> str:
    return ledger.providers.deployers["huggingface"].endpoint_name(model_id, environment)


def test_the_token_is_in_no_log_line_and_no_event(
    deploying: tuple[TestClient, Ledger], hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client, ledger = deploying
    model_id = imported(client, hub, "acme/secretive")
    hub.fail_next_requests(1, status=503, path_prefix="/endpoints/v2")
    client.post(
        f"/api/v1/models/{model_id}/deploy", json={"environment": "prod", "target": "huggingface"}
    )
    clock = Clock()
    step_until(provider_worker(ledger, clock), clock, settled(ledger, model_id, "ModelDeployed"))
    assert caplog.records and SECRET_TOKEN not in caplog.text
    stored = ledger.registry.recorder.select_notifications(start=1, limit=10_000)
    assert stored and not any(SECRET_TOKEN.encode() in n.state for n in stored)


def test_an_outage_of_the_endpoints_api_is_waited_out(
    deploying: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, ledger = deploying
    model_id = imported(client, hub, "acme/outage")
    hub.fail_next_requests(3, status=503, path_prefix="/endpoints/v2")
    client.post(
        f"/api/v1/models/{model_id}/deploy", json={"environment": "prod", "target": "huggingface"}
    )
    clock = Clock()
    step_until(provider_worker(ledger, clock), clock, settled(ledger, model_id, "ModelDeployed"))
    assert "DeploymentFailed" not in event_types(ledger, model_id)


@pytest.mark.parametrize("output_model", [None, "ft:gpt-4o-mini:acme::abc123"])
def test_a_version_with_no_hub_repository_to_serve_fails_its_deployment(
    deploying: tuple[TestClient, Ledger], hub: FakeHub, output_model: str | None
) -> None:
    client, ledger = deploying
    model_id = client.post(
        "/api/v1/models",
        json={"name": f"in-house-{output_model}", "task": "classification", "framework": "sk"},
    ).json()["id"]
    run = client.post(f"/api/v1/models/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
    client.post(
        f"/api/v1/models/{model_id}/training-runs/{run}/complete",
        json={"metrics": {"accuracy": 0.8}, "output_model": output_model},
    )
    asked = len(hub.requests)
    client.post(
        f"/api/v1/models/{model_id}/deploy", json={"environment": "prod", "target": "huggingface"}
    )
    clock = Clock()
    step_until(provider_worker(ledger, clock), clock, settled(ledger, model_id, "DeploymentFailed"))
    reason = last_event(ledger, model_id, "DeploymentFailed")["data"]["reason"]
    assert reason == (
        f"version 1 names no Hub repository to serve (its output_model is {output_model!r})"
    )
    assert not [r for r in hub.requests[asked:] if r[0] != "GET"]  # nothing was created


def test_a_target_without_credentials_is_a_422_naming_target(store_url: str) -> None:
    ledger = make_ledger(store_url)  # no HF token
    with api_client(ledger) as client:
        model_id = client.post(
            "/api/v1/models", json={"name": "m", "task": "classification", "framework": "sklearn"}
        ).json()["id"]
        response = client.post(
            f"/api/v1/models/{model_id}/deploy",
            json={"environment": "prod", "target": "huggingface"},
        )
        assert_problem(response, 422, "target")
        training = client.post(
            f"/api/v1/models/{model_id}/train",
            json={"dataset": "d.jsonl", "backend": "openai", "base_model": "gpt-4o-mini"},
        )
        assert_problem(training, 422, "backend")
    ledger.close()


def test_two_workers_share_the_requests_and_carry_out_each_once(
    deploying: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    # Given deployment requests for eight models
    client, ledger = deploying
    hub.plan_endpoints(steps_to_running=1)
    models = [imported(client, hub, f"acme/shared-{i}") for i in range(8)]
    for model_id in models:
        client.post(
            f"/api/v1/models/{model_id}/deploy",
            json={"environment": "prod", "target": "huggingface"},
        )
    asked = len(hub.requests)
    # When two workers step at the same time until every request is settled
    clock = Clock()
    workers = [provider_worker(ledger, clock, owner=f"w{i}") for i in range(2)]
    deployed = [settled(ledger, model_id, "ModelDeployed") for model_id in models]

    def work(worker: ProviderWorker) -> None:
        for _ in range(60):
            worker.step()
            if all(done() for done in deployed):
                return
            clock.skip(1)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # Then each model was deployed once, through one call that created (or, if an
    # earlier test left it, updated) its endpoint
    assert all(done() for done in deployed)
    assert all("DeploymentFailed" not in event_types(ledger, m) for m in models)
    endpoint_calls = [r for r in hub.requests[asked:] if r[1].startswith("/endpoints/")]
    creates = [r for r in endpoint_calls if r[0] == "POST" and r[1].count("/") == 4]
    updates = [r for r in endpoint_calls if r[0] == "PUT"]
    assert len(creates) + len(updates) == len(models)
    with ledger.write_engine.connect() as conn:
        assert open_jobs(conn) == []


def test_a_provider_message_over_several_lines_is_recorded_on_one(
    deploying: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, ledger = deploying
    model_id = imported(client, hub, "acme/multiline")
    hub.plan_endpoints(steps_to_running=1, outcome="failed", message="OOM\n\tat layer 3\n")
    client.post(
        f"/api/v1/models/{model_id}/deploy", json={"environment": "prod", "target": "huggingface"}
    )
    clock = Clock()
    step_until(provider_worker(ledger, clock), clock, settled(ledger, model_id, "DeploymentFailed"))
    assert last_event(ledger, model_id, "DeploymentFailed")["data"]["reason"] == "OOM at layer 3"
    hub.plan_endpoints(steps_to_running=2)


def test_each_environment_of_each_model_gets_its_own_endpoint_name(hub: FakeHub) -> None:
    endpoints = HubEndpoints(
        hub.url, hub.token, namespace="acme", compute={}, undeploy="delete", timeout=5
    )
    model = "6f1c1f55-5f0e-4c58-9c55-0e4a1c7d2b10"
    names = {
        endpoints.endpoint_name(model_id, environment)
        for model_id in (model, model.replace("6f", "7f"))
        for environment in ("production-eu-west", "production-eu-east", "staging_1", "staging-1")
    }
    assert len(names) == 8
    assert all(re.fullmatch(r"[a-z0-9-]{1,32}", name) for name in names)
    assert endpoints.endpoint_name(model, "prod") == endpoints.endpoint_name(model, "prod")


def test_an_endpoint_that_never_comes_up_times_out_as_a_failed_deployment(
    deploying: tuple[TestClient, Ledger], hub: FakeHub
) -> None:
    client, ledger = deploying
    model_id = imported(client, hub, "acme/slow-start")
    hub.plan_endpoints(steps_to_running=10_000)
    client.post(
        f"/api/v1/models/{model_id}/deploy", json={"environment": "prod", "target": "huggingface"}
    )
    clock = Clock()
    worker = provider_worker(ledger, clock, deployment_timeout_seconds=300)
    step_until(worker, clock, settled(ledger, model_id, "DeploymentFailed"))
    failed = last_event(ledger, model_id, "DeploymentFailed")
    assert failed["data"]["reason"] == "timed out: not finished 300 s after it was requested"
    assert endpoint_of(ledger, model_id, "prod") not in hub.endpoints
    hub.plan_endpoints(steps_to_running=2)
