"""Operators see the projections: health, Prometheus metrics, the admin list."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.reads import MODELS


def created(client: TestClient, name: str) -> int:
    response = client.post(MODELS, json={"name": name, "task": "t", "framework": "f"})
    assert response.status_code == 201, response.text
    position: int = response.json()["position"]
    return position


def test_health_lists_each_projection_running(client: TestClient) -> None:
    # Given a running service with one model
    created(client, "m")
    # When an operator asks for health
    body = client.get("/health").json()
    # Then every projection is reported running, and the service is ok
    assert body["status"] == "ok"
    assert body["projections"] == {
        "catalogue": "running",
        "deployments": "running",
        "versions": "running",
        "timeline": "running",
        "keys": "running",
        "webhooks": "running",
    }


def test_admin_and_metrics_show_position_and_lag(client: TestClient) -> None:
    # Given two models, the last at `position`, read back (the projections caught up)
    created(client, "a")
    position = created(client, "b")
    assert client.get(MODELS, params={"min_position": position}).status_code == 200
    # When an operator lists the projections and scrapes the metrics
    listed = {p["name"]: p for p in client.get("/api/v1/admin/projections").json()}
    scraped = client.get("/metrics").text
    # Then the catalogue stands at the head with no lag, in both
    catalogue = listed["catalogue"]
    assert (catalogue["position"], catalogue["head"], catalogue["lag"]) == (
        position,
        position,
        0,
    )
    assert catalogue["status"] == "running"
    assert f"modelledger_event_log_head {float(position)}" in scraped
    assert f'modelledger_projection_position{{projection="catalogue"}} {float(position)}' in scraped
    assert 'modelledger_projection_failed{projection="catalogue"} 0.0' in scraped


def test_rebuilding_an_unknown_projection_is_404(client: TestClient) -> None:
    response = client.post("/api/v1/admin/projections/nonsense/rebuild")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_cached_answer_never_outlives_its_position(client: TestClient) -> None:
    # Given statistics asked twice at one position (the second from the answer cache)
    position = created(client, "first")
    asked = {"min_position": position}
    first = client.get(f"{MODELS}/statistics", params=asked)
    again = client.get(f"{MODELS}/statistics", params=asked)
    assert first.content == again.content
    assert first.json()["total_models"] == 1
    # When another model is created
    later = created(client, "second")
    # Then a query that asks for its position sees it, not the cached answer
    fresh = client.get(f"{MODELS}/statistics", params={"min_position": later})
    assert fresh.json()["total_models"] == 2
    assert int(fresh.headers["X-Position"]) >= later


def test_detailed_health_gives_each_dependency_and_is_for_admins(client: TestClient) -> None:
    # Given a running service with one model
    position = created(client, "m")
    wait_for_catalogue = client.get(MODELS, params={"min_position": position})
    assert wait_for_catalogue.status_code == 200
    # When an admin asks for detailed health
    body = client.get("/health/detailed").json()
    # Then each dependency says whether it is up, and how long it took to answer
    assert body["event_store"]["status"] == "up" and body["event_store"]["head"] == position
    assert body["event_store"]["latency_ms"] >= 0 and body["read_store"]["latency_ms"] >= 0
    assert body["redis"] == {"status": "not configured"}
    assert body["projections"]["catalogue"]["status"] == "running"
    assert set(body["projections"]) == {
        "catalogue",
        "versions",
        "deployments",
        "timeline",
        "keys",
        "webhooks",
    }
    # while without a key it is 401, and for a viewer 403
    assert TestClient(client.app).get("/health/detailed").status_code == 401
    issued = client.post("/api/v1/admin/keys", json={"name": "v", "role": "viewer"}).json()
    viewer = TestClient(client.app, headers={"Authorization": f"Bearer {issued['key']}"})
    assert viewer.get("/health/detailed").status_code == 403


def test_metrics_time_requests_per_route_and_count_commands_and_events(
    client: TestClient,
) -> None:
    # Given a model created, a command on an unknown model, and reads
    position = created(client, "m")
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.patch(f"{MODELS}/{missing}", json={"description": "x"}).status_code == 404
    model_id = client.get(MODELS, params={"min_position": position}).json()["items"][0]["id"]
    assert client.get(f"{MODELS}/{model_id}").status_code == 200
    assert client.get(MODELS, params={"min_position": position}).status_code == 200
    # When Prometheus scrapes
    text = client.get("/metrics").text
    # Then requests are timed by route template (no ids), commands counted by outcome,
    # events appended and answer cache look-ups counted
    route = 'method="GET",route="/api/v1/models/{model_id}",status="200"'
    assert f"modelledger_http_request_duration_seconds_count{{{route}}} 1.0" in text
    assert model_id not in text
    assert 'modelledger_commands_total{command="CreateModel",outcome="ok"} 1.0' in text
    assert 'modelledger_commands_total{command="UpdateModel",outcome="404"} 1.0' in text
    assert "modelledger_events_appended_total 1.0" in text
    assert 'modelledger_answer_cache_lookups_total{result="hit"}' in text
