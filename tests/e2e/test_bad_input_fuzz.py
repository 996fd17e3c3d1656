"""Property: random JSON in any field, and random headers, never yield a 500."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.problems import (
    CREATE,
    MODELS,
    VALID_BODIES,
    assert_not_server_error,
    assert_problem,
    create_model,
    is_finite_number,
    raw_json,
    start_training,
    unique_name,
)
from tests.support.reads import model_now

# -- property: random JSON never yields a 500 -----------------------------------------------------


def _is_text(value: object) -> bool:
    return isinstance(value, str)


SURROGATES = "\ud800\udbff\udc00\udfff"
# Values that are valid JSON text to Python's parser but troublesome downstream, drawn often.
troublesome = st.sampled_from(
    [math.nan, math.inf, -math.inf, 10**30, "\ud800", "lone \udfff", "\x00", "\n", ""]
)
json_text = st.text(alphabet=st.characters() | st.sampled_from(SURROGATES), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | json_text
    | troublesome
    | st.sampled_from(["classification", "pytorch", "default", " ", "x" * 300])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(
    st.sampled_from(["layers", "dropout"]) | json_text | troublesome.filter(_is_text),
    troublesome | json_values,
    min_size=1,
    max_size=3,
)
# Arbitrary JSON, and values near each field's own type, for every field of the create body.
CREATE_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": json_text | json_values,
    "project": json_text | json_values,
    "description": json_text | json_values,
    "task": json_text | json_values,
    "framework": json_text | json_values,
    "tags": st.lists(json_text, max_size=60) | json_values,
    "configuration": json_objects | json_values,
    "owner": json_text | json_values,
    "unexpected": json_values,
}
FUZZ = settings(
    max_examples=60,
    derandomize=True,  # the same examples every run: a failure here is never a fluke
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("field", CREATE_FIELD_VALUES)
@FUZZ
@given(data=st.data())
def test_any_json_value_in_any_create_field_never_yields_a_500(
    memory_client: TestClient, field: str, data: st.DataObject
) -> None:
    # Given a valid create body with one field replaced by an arbitrary JSON value
    value = data.draw(CREATE_FIELD_VALUES[field], label=field)
    body: dict[str, Any] = {**VALID_BODIES[CREATE], "name": unique_name("fuzz"), field: value}
    # When it is sent (as raw JSON text: NaN, Infinity and lone surrogates included)
    response = raw_json(memory_client, "POST", MODELS, json.dumps(body))
    # Then it is created, a conflict, or a 422 naming that field; never a 500
    assert response.status_code in (201, 409, 422), response.text
    if response.status_code == 422:
        assert_problem(response, 422, field_prefix=f"body.{field}")
    elif response.status_code == 409:
        assert_problem(response, 409)
    else:
        # and what was accepted can be read back as JSON
        model_id = response.json()["id"]
        assert model_now(memory_client, model_id).status_code == 200
        assert memory_client.get(f"{MODELS}/{model_id}/history").status_code == 200


metric_names = st.sampled_from(["accuracy", "loss", "f1"]) | json_text
metric_values = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.sampled_from(["0.9", "1e3", "NaN", ""])
    | json_values
)


@FUZZ
@given(metrics=st.dictionaries(metric_names, metric_values, max_size=3))
def test_any_metrics_object_never_yields_a_500(
    memory_client: TestClient, metrics: dict[str, Any]
) -> None:
    # Given a model with a running training run
    model_id = create_model(memory_client)
    run_id = start_training(memory_client, model_id)
    url = f"{MODELS}/{model_id}/training-runs/{run_id}/complete"
    # When it completes with arbitrary metrics
    response = raw_json(memory_client, "POST", url, json.dumps({"metrics": metrics}))
    # Then it completes or is a 422 naming the metrics; never a 500
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_problem(response, 422, field_prefix="body.metrics")
    else:
        # and only finite numbers (not booleans, not strings) were accepted
        assert all(is_finite_number(value) for value in metrics.values()), metrics
        model = model_now(memory_client, model_id)
        assert model.status_code == 200, model.text


@FUZZ
@given(
    if_match=st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)),
    key=st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=210),
)
def test_any_printable_header_values_never_yield_a_500(
    memory_client: TestClient, if_match: str | None, key: str | None
) -> None:
    # Given a model
    model_id = create_model(memory_client)
    headers = {
        name: value
        for name, value in (("If-Match", if_match), ("Idempotency-Key", key))
        if value is not None
    }
    # When it is updated with arbitrary If-Match and Idempotency-Key headers
    response = memory_client.patch(
        f"{MODELS}/{model_id}", json={"description": "x"}, headers=headers
    )
    # Then it is applied, or a 400/412/422 problem; never a 500
    assert response.status_code in (200, 400, 412, 422), response.text
    assert_not_server_error(response)
