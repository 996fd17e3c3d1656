"""Tasks, frameworks and environments are names in any case: stored in lower case, and
found in any case by every filter that takes them (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.e2e.problems import MODELS, unique_name

DEPLOYMENTS = "/api/v1/deployments"


def test_a_name_sent_in_capitals_is_found_in_any_case(client: TestClient) -> None:
    # Given a model registered and deployed with names in capitals
    body = {"name": unique_name(), "task": "Image-Classification", "framework": " PyTorch\t"}
    model_id = client.post(MODELS, json=body).json()["id"]
    run_id = client.post(f"{MODELS}/{model_id}/train", json={"dataset": "d"}).json()["run_id"]
    done = client.post(
        f"{MODELS}/{model_id}/training-runs/{run_id}/complete", json={"metrics": {"acc": 0.9}}
    )
    assert done.status_code == 200, done.text
    deployed = client.post(f"{MODELS}/{model_id}/deploy", json={"environment": "Production"})
    assert deployed.status_code == 200, deployed.text
    assert deployed.json()["environment"] == "production"
    position = deployed.json()["position"]
    # When the deployments and the catalogue are filtered in another case
    for environment in ("Production", "PRODUCTION", "production", " production "):
        asked = {"environment": environment, "min_position": position}
        found = client.get(DEPLOYMENTS, params=asked)
        # Then the deployment is found
        assert found.status_code == 200, found.text
        assert [item["model_id"] for item in found.json()["items"]] == [model_id], environment
    search = {"task": "IMAGE-classification", "framework": "pytorch", "min_position": position}
    assert [m["id"] for m in client.get(MODELS, params=search).json()["items"]] == [model_id]
    # and the model says it in lower case, as the undeploy in capitals finds it
    model = client.get(f"{MODELS}/{model_id}", params={"min_position": position}).json()
    assert (model["task"], model["framework"]) == ("image-classification", "pytorch")
    undeployed = client.post(f"{MODELS}/{model_id}/undeploy", json={"environment": "PRODUCTION"})
    assert undeployed.status_code == 200, undeployed.text
