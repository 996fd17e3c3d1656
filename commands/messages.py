"""Command messages: frozen, imperative, validated at the edge.

The Annotated field types are shared with the API's request schemas so a
rule (a length cap, finite metrics) is written once.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from write_model.values import CONTROL_CHARACTERS, WHITE_SPACE, has_control_characters

MAX_TAGS = 50


# The rules of text, as the API's schema states them: JSON Schema patterns, written so
# that every regular-expression dialect reads them alike (no \s, no \p{...}).
ONE_LINE = rf"^[^{CONTROL_CHARACTERS}]*$"
# One line with more than white space on it.
NOT_BLANK = (
    rf"^[^{CONTROL_CHARACTERS}]*[^{CONTROL_CHARACTERS}{WHITE_SPACE}][^{CONTROL_CHARACTERS}]*$"
)
NO_NUL = r"^[^\x00]*$"


def _one_line(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def _not_blank(value: str) -> str:
    """Stored without the white space around it; the schema's lengths count what was sent."""
    value = _one_line(value).strip()
    if not value:
        raise ValueError("must hold more than white space")
    return value


def _trimmed(value: object) -> object:
    """Names may come with spaces or tabs around them (the patterns say so): stored without."""
    return value.strip(" \t") if isinstance(value, str) else value


TRIMMED = BeforeValidator(_trimmed)


def _utf8(value: str) -> str:
    """Lone surrogates (legal in JSON escapes) cannot be stored as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: a description with one would stop the
    catalogue projection (its read table stores the description as text)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# The event store's JSON transcoder reads an object with exactly these keys as
# an encoded value (a UUID, a datetime...), so a user object shaped like it
# would not read back as itself.
RESERVED_SHAPE = frozenset({"_type_", "_data_"})


# Deeper values break serialisers on the way out (pydantic stops at 255 levels).
MAX_JSON_DEPTH = 32


def _no_reserved_shape(value: Any, depth: int = 1) -> None:
    if depth > MAX_JSON_DEPTH and isinstance(value, dict | list):
        raise ValueError(f"must not nest deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        if value.keys() == RESERVED_SHAPE:
            raise ValueError('an object with exactly the keys "_type_" and "_data_" is reserved')
        for item in value.values():
            _no_reserved_shape(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _no_reserved_shape(item, depth + 1)


def _strict_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form objects are stored as JSON: no NaN/Infinity, no lone surrogates."""
    _no_reserved_shape(value)
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except ValueError as error:  # UnicodeEncodeError is a ValueError
        raise ValueError(f"must be strict JSON: {error}") from None
    return value


def _lower(value: object) -> object:
    """Tasks, frameworks and environments compare case-insensitively: stored in lower
    case, without the spaces or tabs around them. Only ASCII is lowered (the pattern
    allows nothing else), so what the schema's pattern matches is exactly what passes."""
    value = _trimmed(value)
    if not isinstance(value, str):
        return value
    return value.lower() if value.isascii() else value


def _unique_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))  # keep order, drop repeats


# A line of text with something on it (see ONE_LINE and NOT_BLANK).
ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_not_blank),
    Field(json_schema_extra={"pattern": NOT_BLANK}),
]
ProjectName = Annotated[
    str,
    StringConstraints(pattern=r"^[ \t]*[A-Za-z0-9][A-Za-z0-9._-]{0,99}[ \t]*$"),
    TRIMMED,
]
# The constraint before the validator: the validator still runs first (it wraps the
# rest), and the pattern stays on the string, so it shows in the API's schema; the
# other way round the schema said "any string". The pattern is what a caller may send
# (either case, spaces or tabs around); it is checked on the lowered, trimmed value.
Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[ \t]*[A-Za-z0-9][A-Za-z0-9._+-]{0,63}[ \t]*$"),
    BeforeValidator(_lower),
]
Environment = Annotated[
    str,
    StringConstraints(pattern=r"^[ \t]*[A-Za-z0-9][A-Za-z0-9_-]{0,62}[ \t]*$"),
    BeforeValidator(_lower),
]
# Free text over many lines: any character but NUL (lone surrogates cannot be sent as UTF-8).
Text = Annotated[
    str,
    StringConstraints(max_length=10_000),
    AfterValidator(_utf8),
    AfterValidator(_no_nul),
    Field(json_schema_extra={"pattern": NO_NUL}),
]
ShortText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000),
    AfterValidator(_not_blank),
    Field(json_schema_extra={"pattern": NOT_BLANK}),
]
Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_not_blank),
    Field(json_schema_extra={"pattern": NOT_BLANK}),
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_unique_tags)]
Uri = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000),
    AfterValidator(_not_blank),
    Field(json_schema_extra={"pattern": NOT_BLANK}),
]
# strict: true, false and "0.9" are not metric values.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
MetricName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_one_line)
]
MAX_METRICS = 200
# Said whole: a pattern on the names' type would make pydantic's schema "patternProperties",
# which says nothing of the names that do not match it.
Metrics = Annotated[
    dict[MetricName, FiniteFloat],
    Field(max_length=MAX_METRICS),
    AfterValidator(_strict_json),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"minLength": 1, "maxLength": 100, "pattern": ONE_LINE},
            "additionalProperties": {"type": "number"},
            "maxProperties": MAX_METRICS,
        }
    ),
]
JsonObject = Annotated[dict[str, Any], AfterValidator(_strict_json)]
# Where training runs: "external" (reported through the API) or a provider ModelLedger drives.
Backend = Annotated[str, StringConstraints(pattern=r"^(external|openai)$")]
# Who runs a deployment's endpoint: "external" (reported) or a provider ModelLedger drives.
DeployTarget = Annotated[str, StringConstraints(pattern=r"^(external|huggingface)$")]
# The Hub's rule for repository ids: owner/name, each of letters, digits, '-', '_' and '.',
# neither starting nor ending with '-' or '.'.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
HUB_REPO_ID = rf"^{_HUB_PART}/{_HUB_PART}$"
RequestId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_one_line),
    Field(json_schema_extra={"pattern": ONE_LINE}),
]
VersionNumber = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
RunId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_one_line),
    Field(json_schema_extra={"pattern": ONE_LINE}),
]
# Why a model is archived: free text like a body's, so no control characters either.
Reason = Annotated[
    str,
    StringConstraints(max_length=1000),
    AfterValidator(_utf8),
    AfterValidator(_one_line),
    Field(json_schema_extra={"pattern": ONE_LINE}),
]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateModel(Command):
    name: ModelName
    project: ProjectName = "default"
    description: Text = ""
    task: Identifier
    framework: Identifier
    tags: Tags = []
    configuration: JsonObject = {}
    owner: ShortText | None = None


class UpdateModel(Command):
    model_id: UUID
    description: Text | None = None
    task: Identifier | None = None
    framework: Identifier | None = None
    tags: Tags | None = None
    configuration: JsonObject | None = None
    owner: ShortText | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude={"model_id"}, exclude_none=True)


class UpdateVersion(Command):
    """Say more about a trained version: its description and tags (never its metrics)."""

    model_id: UUID
    model_version: int = Field(ge=1, le=10**9)
    description: Text | None = None
    tags: Tags | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include={"description", "tags"}, exclude_none=True)


class TrainModel(Command):
    model_id: UUID
    dataset: ShortText
    hyperparameters: JsonObject = {}
    backend: Backend = "external"
    base_model: ShortText | None = Field(default=None, validate_default=True)

    @field_validator("base_model")
    @classmethod
    def _provider_needs_base_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("backend", "external") != "external":
            raise ValueError(f"the {info.data['backend']} backend needs a base_model to fine-tune")
        return value


class RecordTrainingJob(Command):
    """The worker's: the provider accepted a run as one of its jobs."""

    model_id: UUID
    run_id: RunId
    job_id: ShortText


class ImportVersion(Command):
    """A version trained elsewhere (a Hub model, an MLflow model version) with the
    metrics and parameters recorded there, and what people wrote about it."""

    model_id: UUID
    source: Identifier
    dataset: ShortText
    metrics: Metrics
    output_model: ShortText | None = None
    artifact_uri: Uri | None = None
    hyperparameters: JsonObject = {}
    source_version: VersionNumber | None = None
    description: Text = ""
    tags: Tags = []


class CompleteTraining(Command):
    model_id: UUID
    run_id: RunId
    metrics: Metrics
    artifact_uri: Uri | None = None
    output_model: ShortText | None = None
    by_backend: bool = False  # the provider worker's: never set from a request body


class FailTraining(Command):
    model_id: UUID
    run_id: RunId
    reason: ShortText


class DeployModel(Command):
    model_id: UUID
    environment: Environment
    model_version: VersionNumber | None = None
    target: DeployTarget = "external"
    endpoint_url: Uri | None = None

    @field_validator("endpoint_url")
    @classmethod
    def _provider_names_its_endpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("target", "external") != "external":
            raise ValueError(f"the {info.data['target']} endpoint's URL comes from its provider")
        return value


class CompleteDeployment(Command):
    """The worker's: the provider carried out a deployment request."""

    model_id: UUID
    request_id: RequestId
    endpoint_name: ShortText
    endpoint_url: Uri | None = None


class FailDeployment(Command):
    """The worker's: the provider could not carry out a deployment request."""

    model_id: UUID
    request_id: RequestId
    reason: ShortText


class UndeployModel(Command):
    model_id: UUID
    environment: Environment


class RollBackDeployment(Command):
    model_id: UUID
    environment: Environment


class ArchiveModel(Command):
    model_id: UUID
    reason: Reason = ""
