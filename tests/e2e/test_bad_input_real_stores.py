"""A representative set of the bad-input stories on both real stores (SQLite, PostgreSQL)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.e2e.problems import (
    CREATE,
    MODELS,
    UNKNOWN_MODEL,
    VALID_BODIES,
    assert_problem,
    create_model,
    error_fields,
    model_version,
    raw_json,
    start_training,
    trained_model,
)
from tests.support.reads import model_now

# -- the same stories on both real stores (SQLite and PostgreSQL) ---------------------------------


class TestOnRealStores:
    """A representative subset, against `client` (parametrized over sqlite and postgres)."""

    def test_missing_fields_are_named(self, client: TestClient) -> None:
        # Given an empty create body
        # When it is sent
        response = client.post(MODELS, json={})
        # Then every required field is named
        problem = assert_problem(response, 422)
        assert {"body.name", "body.task", "body.framework"} <= set(error_fields(problem))

    def test_malformed_json_is_400(self, client: TestClient) -> None:
        # Given a body that is not JSON
        # When it is sent
        response = raw_json(client, "POST", MODELS, '{"name": ')
        # Then it is a 400 naming the body
        assert_problem(response, 400, "body")

    def test_a_nan_metric_is_named(self, client: TestClient) -> None:
        # Given a running training run
        model_id = create_model(client)
        run_id = start_training(client, model_id)
        url = f"{MODELS}/{model_id}/training-runs/{run_id}/complete"
        # When it completes with NaN
        response = raw_json(client, "POST", url, '{"metrics": {"loss": NaN}}')
        # Then the metric is named and the run is still running
        assert_problem(response, 422, "body.metrics.loss")
        assert model_now(client, model_id).json()["status"] == "training"

    def test_unknown_model_and_run_are_404(self, client: TestClient) -> None:
        # Given a model with a running training run
        model_id = create_model(client)
        start_training(client, model_id)
        # When an unknown model is trained, and an unknown run of the model is completed
        unknown_model = client.post(f"{MODELS}/{UNKNOWN_MODEL}/train", json={"dataset": "d"})
        unknown_run = client.post(
            f"{MODELS}/{model_id}/training-runs/nope/complete", json={"metrics": {"a": 1.0}}
        )
        # Then both are 404
        assert_problem(unknown_model, 404)
        assert_problem(unknown_run, 404)

    def test_a_malformed_model_id_is_named(self, client: TestClient) -> None:
        # Given an id that is not a UUID
        # When the model is read
        response = client.get(f"{MODELS}/not-a-uuid")
        # Then it is a 422 naming the path parameter
        assert_problem(response, 422, "path.model_id")

    def test_deploy_errors(self, client: TestClient) -> None:
        # Given an untrained model and a model with one trained version
        untrained = create_model(client)
        trained = trained_model(client)
        # When the untrained one is deployed, and version 5 of the trained one is deployed
        no_version = client.post(f"{MODELS}/{untrained}/deploy", json={"environment": "prod"})
        never_trained = client.post(
            f"{MODELS}/{trained}/deploy", json={"environment": "prod", "model_version": 5}
        )
        # Then the first is a conflict and the second names model_version
        assert_problem(no_version, 409)
        assert_problem(never_trained, 422, field_prefix="model_version")

    def test_if_match_errors(self, client: TestClient) -> None:
        # Given a model at version 1
        model_id = create_model(client)
        url = f"{MODELS}/{model_id}"
        # When it is updated with a malformed and then with a stale If-Match
        malformed = client.patch(url, json={"description": "x"}, headers={"If-Match": "v1"})
        stale = client.patch(url, json={"description": "x"}, headers={"If-Match": '"7"'})
        # Then the first is a 400 naming If-Match, the second a 412, and nothing changed
        assert_problem(malformed, 400, "If-Match")
        assert_problem(stale, 412)
        assert model_version(client, model_id) == 1

    def test_idempotency_key_errors(self, client: TestClient) -> None:
        # Given a model created with an Idempotency-Key
        headers = {"Idempotency-Key": "create-once"}
        first = client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "a"}, headers=headers)
        assert first.status_code == 201, first.text
        # When the key is reused with a different body, and a malformed key is sent
        reused = client.post(MODELS, json={**VALID_BODIES[CREATE], "name": "b"}, headers=headers)
        malformed = client.post(
            MODELS, json={**VALID_BODIES[CREATE], "name": "c"}, headers={"Idempotency-Key": "a b"}
        )
        # Then the first is a 422 and the second a 400, both naming the header
        assert_problem(reused, 422, "Idempotency-Key")
        assert_problem(malformed, 400, "Idempotency-Key")

    def test_control_characters_and_surrogates_are_named(self, client: TestClient) -> None:
        # Given create bodies with a NUL in the name and a lone surrogate in the configuration
        nul_name = {**VALID_BODIES[CREATE], "name": "bad\x00name"}
        surrogate = '{"name": "s", "task": "t", "framework": "f", "configuration": {"\\ud800": 1}}'
        # When they are sent
        # Then each is a 422 naming the field, never a 500 from the store
        assert_problem(client.post(MODELS, json=nul_name), 422, "body.name")
        assert_problem(
            raw_json(client, "POST", MODELS, surrogate), 422, field_prefix="body.configuration"
        )

    def test_an_unknown_field_is_named(self, client: TestClient) -> None:
        # Given a create body with a field the API does not know
        body = {**VALID_BODIES[CREATE], "colour": "blue"}
        # When it is sent
        # Then the field is named
        assert_problem(client.post(MODELS, json=body), 422, "body.colour")
