"""The OpenAPI document says which texts and times each field accepts: whatever a client
sends, the documented schema (read as JSON Schema reads it, ECMA 262 patterns, formats
checked) and the service agree on whether it is accepted. Names, tags, reasons and the
like refuse control characters, and say so in their pattern; a blank one is refused where
the pattern asks for more than white space; times are RFC 3339, never a number.

(The served Schemathesis run, tests/e2e/test_openapi_conformance.py, must let commands
answer 422 for what no document can say, such as a reused Idempotency-Key; this test is
what keeps the text rules of their bodies truthful.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.admin_keys import IssueKeyRequest
from api.observability import is_correlation_id
from api.schemas import (
    CompleteTrainingRequest,
    CreateModelRequest,
    DeployRequest,
    FailTrainingRequest,
    HubImportRequest,
    TrainRequest,
)
from commands.messages import Reason, RunId
from queries.messages import ListDeployments, ListEvents, Moment, SearchModels, TopPerforming
from tests.support.documented import accepts, openapi_document, parameter, string_schema

DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]
# Near misses: the C0 and C1 controls, DEL, the line and paragraph separators, white
# space of every kind, invisible format characters (refused: zero-width ones, direction
# marks and overrides, word joiners, the byte order mark; allowed: the soft hyphen, an
# Arabic number sign), an unassigned and a private-use code point, NUL.
TRICKY = (
    " \t\n\r\x0b\x0c\x1c\x1f\x7f\x80\x85\x9f\xa0\xad\u1680\u2000\u200a\u200b\u2028\u2029"
    "\u202a\u202e\u202f\u205f\u2066\u2069\u3000\ufeff\U000562bf\U000f0000\x00az09._-@/"
    "\u061c\u200c\u200d\u200f\u2060\u206f\u0600"
)
# Lone surrogates cannot travel in UTF-8 (nor be read by a JSON Schema validator).
TEXTS = st.text(alphabet=st.sampled_from(TRICKY), max_size=6) | st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=6
)


def field(model: str, name: str) -> dict[str, Any]:
    return string_schema(SCHEMAS[model]["properties"][name])


def is_a(kind: Any) -> Callable[[str], bool]:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    return accepts(adapter.validate_python)


def create(**fields: object) -> CreateModelRequest:
    return CreateModelRequest.model_validate({"name": "m", "task": "t", "framework": "f"} | fields)


METRIC_NAMES = SCHEMAS["CompleteTrainingRequest"]["properties"]["metrics"]["propertyNames"]
MODELS = "/api/v1/models"
MODEL = "/api/v1/models/{model_id}"
SEARCH = "/api/v1/models/search"
TEXT_FIELDS: dict[str, tuple[dict[str, Any], Callable[[str], bool]]] = {
    "name": (field("CreateModelRequest", "name"), accepts(lambda v: create(name=v))),
    "project": (field("CreateModelRequest", "project"), accepts(lambda v: create(project=v))),
    "description": (
        field("CreateModelRequest", "description"),
        accepts(lambda v: create(description=v)),
    ),
    "tag": (field("CreateModelRequest", "tags"), accepts(lambda v: create(tags=[v]))),
    "owner": (field("CreateModelRequest", "owner"), accepts(lambda v: create(owner=v))),
    "dataset": (field("TrainRequest", "dataset"), accepts(lambda v: TrainRequest(dataset=v))),
    "metric name": (
        {"type": "string", **METRIC_NAMES},
        accepts(lambda v: CompleteTrainingRequest(metrics={v: 1.0})),
    ),
    "output_model": (
        field("CompleteTrainingRequest", "output_model"),
        accepts(lambda v: CompleteTrainingRequest(metrics={}, output_model=v)),
    ),
    "artifact_uri": (
        field("CompleteTrainingRequest", "artifact_uri"),
        accepts(lambda v: CompleteTrainingRequest(metrics={}, artifact_uri=v)),
    ),
    "failure reason": (
        field("FailTrainingRequest", "reason"),
        accepts(lambda v: FailTrainingRequest(reason=v)),
    ),
    "endpoint_url": (
        field("DeployRequest", "endpoint_url"),
        accepts(lambda v: DeployRequest(environment="prod", endpoint_url=v)),
    ),
    "revision": (
        field("HubImportRequest", "revision"),
        accepts(lambda v: HubImportRequest(repo_id="a/b", revision=v)),
    ),
    "key name": (
        field("IssueKeyRequest", "name"),
        accepts(lambda v: IssueKeyRequest.model_validate({"name": v, "role": "viewer"})),
    ),
    "archive reason": (parameter(MODEL, "delete", "reason"), is_a(Reason)),
    "run_id": (parameter(f"{MODEL}/training-runs/{{run_id}}/fail", "post", "run_id"), is_a(RunId)),
    "project filter": (
        parameter(SEARCH, "get", "project"),
        accepts(lambda v: SearchModels(project=v)),
    ),
    "tag filter": (parameter(SEARCH, "get", "tag"), accepts(lambda v: SearchModels(tag=[v]))),
    "task filter": (parameter(SEARCH, "get", "task"), accepts(lambda v: SearchModels(task=v))),
    "metric filter": (
        parameter(f"{MODELS}/top-performing", "get", "metric"),
        accepts(lambda v: TopPerforming(metric=v)),
    ),
    "cursor": (parameter(SEARCH, "get", "cursor"), accepts(lambda v: SearchModels(cursor=v))),
    "actor": (parameter("/api/v1/events", "get", "actor"), accepts(lambda v: ListEvents(actor=v))),
    "environment filter": (
        parameter("/api/v1/deployments", "get", "environment"),
        accepts(lambda v: ListDeployments(environment=v)),
    ),
    "X-Correlation-ID": (parameter(MODELS, "post", "x-correlation-id"), is_correlation_id),
}
TIME_FIELDS: dict[str, tuple[dict[str, Any], Callable[[str], bool]]] = {
    "as_of": (parameter(SEARCH, "get", "as_of"), accepts(lambda v: SearchModels(as_of=v))),
    "as_of of one model": (parameter(MODEL, "get", "as_of"), is_a(Moment)),
    "until": (parameter("/api/v1/events", "get", "until"), accepts(lambda v: ListEvents(until=v))),
}
# Times as clients write them, and near misses: no seconds, no zone, a space, a number,
# out of range, a leap second, RFC 3339's year 0.
ZONES = st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "-23:59", "+23:59", "+2400", ""])
TIMES = st.builds(
    lambda moment, separator, zone: moment.isoformat(sep=separator)[:26] + zone,
    st.datetimes(),
    st.sampled_from(["T", "t", " "]),
    ZONES,
) | st.sampled_from(
    [
        "0.5",
        "1700000000",
        "2026-01-31",
        "2026-01-31T12:00Z",
        "2026-01-31T24:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "0000-99-99T99:99:99Z",
        "0000-02-29T23:59:60+01:00",
        "0000-01-01T00:60:00Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "2026-01-31T12:00:00.1234567890Z",
    ]
)


def agrees(schema: dict[str, Any], accepted: Callable[[str], bool], value: str) -> None:
    documented = jsonschema_rs.validator_for(schema, validate_formats=True)
    assert documented.is_valid(value) == accepted(value), (value, schema)


@pytest.mark.parametrize("name", list(TEXT_FIELDS))
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(value=TEXTS)
def test_the_documented_schema_says_which_texts_are_accepted(name: str, value: str) -> None:
    # Given the schema the document gives the field
    schema, accepted = TEXT_FIELDS[name]
    # When any text is sent as its value
    # Then the service accepts it exactly when the document says it may
    agrees(schema, accepted, value)


@pytest.mark.parametrize("name", list(TIME_FIELDS))
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(value=TIMES)
def test_the_documented_format_says_which_times_are_accepted(name: str, value: str) -> None:
    schema, accepted = TIME_FIELDS[name]
    agrees(schema, accepted, value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("tag", "ok\u00adok", True),  # a soft hyphen is a letter's business, not a control
        ("tag", "zero\u200bwidth", False),  # invisible: reads as another tag
        ("tag", "\U000562bf", True),  # nor is a code point Unicode has not assigned yet
        ("tag", "a\x1bb", False),  # an escape sequence could rewrite a terminal
        ("name", "\u202eevil", False),  # a right-to-left override makes a name read as another
        ("name", "\u3000", False),  # blank
        ("archive reason", "", True),
        ("archive reason", "line\nbreak", False),
        ("description", "two\nlines", True),
        ("X-Correlation-ID", "trace 42", True),
        ("X-Correlation-ID", "x" * 201, False),
    ],
)
def test_what_a_field_accepts_is_what_its_schema_says(
    name: str, value: str, expected: bool
) -> None:
    schema, accepted = TEXT_FIELDS[name]
    assert jsonschema_rs.validator_for(schema).is_valid(value) is expected
    assert accepted(value) is expected


def test_a_time_is_never_a_number_and_a_moment_out_of_range_is_the_first_or_last() -> None:
    read = TypeAdapter[Any](Moment).validate_python
    with pytest.raises(ValidationError):
        read("0.5")
    assert read("0001-01-01T00:00:00+23:59") == datetime.min.replace(tzinfo=UTC)
    assert read("9999-12-31T23:59:59-23:59") == datetime.max.replace(tzinfo=UTC)
    assert read("2026-12-31T23:59:60Z") == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert read("2026-01-31T12:00:00+01:00") == datetime(2026, 1, 31, 11, tzinfo=UTC)
