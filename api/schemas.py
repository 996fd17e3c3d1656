"""Request and response bodies of the HTTP API (separate from commands and the domain)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from commands.messages import (
    HUB_REPO_ID,
    Backend,
    DeployTarget,
    Environment,
    Identifier,
    JsonObject,
    Metrics,
    ModelName,
    ProjectName,
    ShortText,
    Tags,
    Text,
    Uri,
    VersionNumber,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateModelRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "fraud-detector",
                    "project": "payments",
                    "task": "classification",
                    "framework": "pytorch",
                    "description": "Flags card fraud in real time",
                    "tags": ["fraud", "tabular"],
                    "configuration": {"layers": 4},
                }
            ]
        },
    )

    name: ModelName
    project: ProjectName = "default"
    description: Text = ""
    task: Identifier
    framework: Identifier
    tags: Tags = []
    configuration: JsonObject = {}
    owner: ShortText | None = None


class UpdateVersionRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"description": "Shipped to EU traffic", "tags": ["eu"]}]},
    )

    description: Text | None = None
    tags: Tags | None = Field(default=None, description="replaces the version's tags")


class UpdateModelRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "description": "Now with merchant features",
                    "tags": ["fraud", "v2"],
                }
            ]
        },
    )

    description: Text | None = None
    task: Identifier | None = None
    framework: Identifier | None = None
    tags: Tags | None = None
    configuration: JsonObject | None = None
    owner: ShortText | None = None


class TrainRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset": "s3://datasets/fraud/2026-11.parquet",
                    "hyperparameters": {"lr": 0.001, "epochs": 10},
                }
            ],
            # A provider fine-tunes a base model: said here as TrainModel checks it.
            "if": {"properties": {"backend": {"const": "openai"}}, "required": ["backend"]},
            "then": {"properties": {"base_model": {"type": "string"}}, "required": ["base_model"]},
        },
    )

    dataset: ShortText = Field(
        description='external: any reference; openai: an OpenAI file id ("file-...") or a '
        "JSONL file's path in the registry's datasets directory"
    )
    hyperparameters: JsonObject = {}
    backend: Backend = Field(
        default="external",
        description="external: you report the outcome; openai: ModelLedger runs an OpenAI "
        "fine-tuning job and records its outcome",
    )
    base_model: ShortText | None = Field(
        default=None, description="the model to fine-tune (needed by the openai backend)"
    )


class CompleteTrainingRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "metrics": {"accuracy": 0.973, "loss": 0.081},
                    "artifact_uri": "s3://models/fraud-detector/3",
                }
            ]
        },
    )

    metrics: Metrics
    artifact_uri: Uri | None = None
    output_model: ShortText | None = Field(
        default=None, description="the trained model's name at its backend, if any"
    )


class FailTrainingRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason": "CUDA out of memory at epoch 3",
                }
            ]
        },
    )

    reason: ShortText


class DeployRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "environment": "production",
                    "model_version": 3,
                    "endpoint_url": "https://models.example.com/fraud-detector",
                }
            ],
            # A provider's endpoint has the URL the provider gives it (DeployModel checks it).
            "if": {"properties": {"target": {"const": "huggingface"}}, "required": ["target"]},
            "then": {"properties": {"endpoint_url": {"type": "null"}}},
        },
    )

    environment: Environment
    model_version: VersionNumber | None = None
    target: DeployTarget = Field(
        default="external",
        description="external: you report the endpoint; huggingface: ModelLedger creates or "
        "updates a Hugging Face Inference Endpoint and records it when it runs (202)",
    )
    endpoint_url: Uri | None = None


class HubImportRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"repo_id": "distilbert/distilbert-base-uncased"}]},
    )

    repo_id: Annotated[str, StringConstraints(pattern=HUB_REPO_ID, max_length=200)] = Field(
        description="the Hub repository, owner/name"
    )
    revision: ShortText | None = Field(default=None, description="a branch, tag or commit")
    project: ProjectName = "huggingface"


class EnvironmentRequest(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "environment": "production",
                }
            ]
        },
    )

    environment: Environment


class CommandResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6c3f8e-6d1a-5c8e-9a59-3c1f0b2d4e5f",
                    "version": 2,
                    "position": 17,
                    "run_id": "5d0f6a52-2a43-4c4e-8a8b-9f0e3d2c1b0a",
                }
            ]
        }
    )

    id: str
    version: int = Field(description="the model's aggregate version after the command")
    position: int | None = Field(description="global event position of the last event")
    run_id: str | None = None
    model_version: int | None = None
    environment: str | None = None
    request_id: str | None = Field(
        default=None, description="a provider deployment request (status pending)"
    )
    status: str | None = Field(default=None, description="pending: a provider is working on it")
    target: str | None = Field(default=None, description="the provider (status pending)")


class HubImportResponse(BaseModel):
    id: str
    version: int
    position: int | None
    created: bool = Field(description="the model was registered by this import")
    changed: list[str] = Field(description="metadata fields this import updated")
    model_version: int | None = Field(description="the version this import recorded, if any")
    revision: str


class ProblemField(BaseModel):
    field: str = Field(description="the field, header, query parameter or path at fault")
    message: str


class Problem(BaseModel):
    type: str = Field(description="the kind of problem: a stable URI (see the list above)")
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None


VersionQuery = Annotated[int | None, Field(ge=1)]
