"""Every path the client calls, by method (a test checks each against the server's
OpenAPI document, so a server change that breaks the client fails its CI), and how a
call's values are written into one."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

MODELS = "/api/v1/models"
MODEL = "/api/v1/models/{model_id}"
BY_NAME = "/api/v1/models/by-name"
SEARCH = "/api/v1/models/search"
STATISTICS = "/api/v1/models/statistics"
TOP_PERFORMING = "/api/v1/models/top-performing"
HISTORY = "/api/v1/models/{model_id}/history"
VERSIONS = "/api/v1/models/{model_id}/versions"
VERSION = "/api/v1/models/{model_id}/versions/{number}"
TRAIN = "/api/v1/models/{model_id}/train"
RUNS = "/api/v1/models/{model_id}/training-runs"
COMPLETE = "/api/v1/models/{model_id}/training-runs/{run_id}/complete"
FAIL = "/api/v1/models/{model_id}/training-runs/{run_id}/fail"
DEPLOY = "/api/v1/models/{model_id}/deploy"
UNDEPLOY = "/api/v1/models/{model_id}/undeploy"
ROLLBACK = "/api/v1/models/{model_id}/rollback"
DEPLOYMENTS = "/api/v1/models/{model_id}/deployments"
HUB_IMPORT = "/api/v1/models/import/huggingface"
EVENTS = "/api/v1/events"
EVENT_STREAM = "/api/v1/events/stream"
METRIC_DEFINITIONS = "/api/v1/metric-definitions"
METRIC_DEFINITION = "/api/v1/metric-definitions/{name}"
KEYS = "/api/v1/admin/keys"
KEY = "/api/v1/admin/keys/{key_id}"

CALLED: tuple[tuple[str, str], ...] = (
    ("POST", MODELS), ("GET", MODEL), ("PATCH", MODEL), ("DELETE", MODEL), ("GET", BY_NAME),
    ("GET", SEARCH), ("GET", STATISTICS), ("GET", TOP_PERFORMING), ("GET", HISTORY),
    ("GET", VERSIONS), ("GET", VERSION), ("PATCH", VERSION), ("POST", TRAIN), ("GET", RUNS),
    ("POST", COMPLETE), ("POST", FAIL), ("POST", DEPLOY), ("POST", UNDEPLOY),
    ("POST", ROLLBACK), ("GET", DEPLOYMENTS), ("POST", HUB_IMPORT), ("GET", EVENTS),
    ("GET", EVENT_STREAM), ("GET", METRIC_DEFINITIONS), ("GET", METRIC_DEFINITION),
    ("PUT", METRIC_DEFINITION), ("DELETE", METRIC_DEFINITION), ("POST", KEYS), ("GET", KEYS),
    ("DELETE", KEY),
)  # fmt: skip


def path(template: str, **parts: object) -> str:
    return template.format(**{k: quote(str(v), safe="") for k, v in parts.items()})


def moment(value: datetime | str | None) -> str | None:
    """A moment as the server reads one: RFC 3339, with its zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("as_of needs a time zone: datetime.now(UTC), not datetime.now()")
        return value.isoformat()
    return value
