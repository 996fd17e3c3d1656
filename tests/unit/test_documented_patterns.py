"""The OpenAPI document says which names and search words are accepted: whatever a client
sends, the documented pattern (read as JSON Schema reads it, ECMA 262) and the service
agree on whether it is accepted."""

from __future__ import annotations

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas import CreateModelRequest, DeployRequest
from queries.messages import SearchModels
from tests.support.documented import accepts, openapi_document, parameter, string_schema

DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]
# Near misses: capitals, spaces and tabs around, other white space, letters whose lower
# case is ASCII (the Kelvin sign) or is not, punctuation inside and out of ASCII.
TRICKY = " \t\n\r\x0bAZaz09._+-_!\"'?/\\Kİéß—\u3000\u00a0模\U0001f600"
SAMPLES = st.text(alphabet=st.sampled_from(TRICKY), max_size=12) | st.text(max_size=12)


FIELDS = {
    "task": (
        SCHEMAS["CreateModelRequest"]["properties"]["task"],
        accepts(lambda v: CreateModelRequest(name="m", task=v, framework="f")),
    ),
    "framework": (
        SCHEMAS["CreateModelRequest"]["properties"]["framework"],
        accepts(lambda v: CreateModelRequest(name="m", task="t", framework=v)),
    ),
    "environment": (
        SCHEMAS["DeployRequest"]["properties"]["environment"],
        accepts(lambda v: DeployRequest(environment=v)),
    ),
    "q": (parameter("/api/v1/models/search", "get", "q"), accepts(lambda v: SearchModels(q=v))),
}


@pytest.mark.parametrize("field", list(FIELDS))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=SAMPLES)
def test_the_documented_pattern_says_what_is_accepted(field: str, value: str) -> None:
    # Given the schema the document gives the field
    schema, accepted = FIELDS[field]
    documented = jsonschema_rs.validator_for(string_schema(schema))
    # When any text is sent as its value
    # Then the service accepts it exactly when the document says it may
    assert documented.is_valid(value) == accepted(value), (field, value, schema)


@pytest.mark.parametrize(
    ("field", "value"),
    [("task", "Image-Classification"), ("framework", " PyTorch\t"), ("environment", "PROD")],
)
def test_names_in_capitals_are_documented_as_accepted(field: str, value: str) -> None:
    schema, accepted = FIELDS[field]
    assert jsonschema_rs.validator_for(string_schema(schema)).is_valid(value)
    assert accepted(value)
