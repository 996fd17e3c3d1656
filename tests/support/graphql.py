"""GraphQL for tests: send a document, and read GraphQL's shapes back in REST's words (lists
of keyed entries become the objects REST keys by metric or environment), so a GraphQL
answer can be compared with the REST answer for the same question."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

VERSION_FIELDS = (
    "number runId metrics { name value } artifactUri createdAt outputModel description tags "
    "sourceVersion"
)
RUN_FIELDS = (
    "runId dataset hyperparameters backend startedAt state modelVersion "
    "failureReason baseModel jobId"
)
SUMMARY_FIELDS = (
    "id version name project description task framework tags owner status createdAt "
    "updatedAt latestVersion bestMetrics { metric value modelVersion } "
    "serving { environment modelVersion endpointUrl }"
)
MODEL_FIELDS = (
    f"{SUMMARY_FIELDS} configuration versions {{ {VERSION_FIELDS} }} "
    f"trainingRuns {{ {RUN_FIELDS} }}"
)
STRETCH_FIELDS = (
    "environment modelVersion endpointUrl action deployedBy fromPosition fromTime toPosition "
    "toTime endedBy"
)
EVENT_FIELDS = "position version type timestamp actor correlationId causationId data modelId"


def graphql(
    client: TestClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    """The whole answer (data, errors, extensions) of a document that is answered 200."""
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def data_of(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    answer = graphql(client, query, **variables)
    assert "errors" not in answer, answer["errors"]
    found: dict[str, Any] = answer["data"]
    return found


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def in_rest_words(value: Any) -> Any:
    """GraphQL's camelCase fields as REST's snake_case (JSON values left as they are)."""
    if isinstance(value, list):
        return [in_rest_words(item) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {"configuration", "hyperparameters", "data"}
    return {snake(key): item if key in kept else in_rest_words(item) for key, item in value.items()}


def best_metrics(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        e["metric"]: {"value": e["value"], "model_version": e["model_version"]} for e in entries
    }


def rest_model(found: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL model (MODEL_FIELDS or SUMMARY_FIELDS) as REST writes its fields."""
    model = in_rest_words(found)
    model["best_metrics"] = best_metrics(model["best_metrics"])
    model["deployments"] = {s.pop("environment"): s for s in model.pop("serving")}
    for version in model.get("versions", []):
        version["metrics"] = {m["name"]: m["value"] for m in version["metrics"]}
    return dict(model)


def rest_serving(rest: dict[str, Any]) -> dict[str, Any]:
    """What GraphQL's ``serving`` holds of a REST model's deployments."""
    return {
        env: {"model_version": d["model_version"], "endpoint_url": d["endpoint_url"]}
        for env, d in rest["deployments"].items()
    }


def comparable_rest_model(rest: dict[str, Any], whole: bool = True) -> dict[str, Any]:
    """The REST model limited to what the GraphQL query asked for."""
    names = [*SUMMARY_FIELDS.split(" {")[0].split(), "best_metrics", "deployments"]
    keep = {snake(n) for n in names}
    if whole:
        keep |= {"configuration", "versions", "training_runs"}
    found = {k: v for k, v in rest.items() if k in keep}
    found["deployments"] = rest_serving(rest)
    return found


def rest_statistics(found: dict[str, Any]) -> dict[str, Any]:
    stats = in_rest_words(found)
    for name in ("by_status", "by_task", "by_framework", "active_deployments"):
        stats[name] = {c["key"]: c["count"] for c in stats[name]}
    stats["metrics"] = {m.pop("metric"): m for m in stats["metrics"]}
    return dict(stats)


STATISTICS_FIELDS = (
    "totalModels byStatus { key count } byTask { key count } byFramework { key count } "
    "trainingRuns { started completed failed } activeDeployments { key count } "
    "metrics { metric count mean min max direction best }"
)
