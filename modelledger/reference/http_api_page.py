"""The HTTP API's reference, from the OpenAPI document the app serves: every operation
with its parameters, body and answers, every schema, and every problem type."""

from __future__ import annotations

from typing import Any

from api.errors import KINDS, PROBLEM_JSON
from modelledger.reference.markdown import cell, generated_from
from modelledger.settings import Settings
from modelledger.web import create_app

INTRO = """\
The running service serves this as an OpenAPI document at `/openapi.json`, with Swagger UI
at `/docs` and ReDoc at `/redoc` (both from the installed package, so they work offline).
Every request but `GET /health` and the API docs sends `Authorization: Bearer <key>` (see
[Keys, roles and projects](../how-to/keys.md)). Every query answers with `X-Position`, and
those of the read tables accept `min_position` (a model's history and the event feed read
the log itself and take none); every command answers `{id, version, position, ...}` with
`ETag`, `X-Position` and `X-Correlation-ID` (see
[Consistency](../explanation/consistency.md)).

"""
GROUPS = {
    "commands": "Commands",
    "queries": "Queries",
    "audit": "The event feed",
    "metrics": "Metric definitions",
    "keys": "API keys",
    "webhooks": "Webhooks",
    "operations": "Operations",
}
PROBLEMS = """\
## Problem types

Every error is `application/problem+json` ([RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)):
`{type, title, status, detail, errors?}`. `type` names the kind of problem and never
changes: key on it (the title and detail are for people). `errors` is `[{field, message}]`
and names what is at fault: a field (`body.name`, `query.as_of`), a header (`If-Match`,
`Content-Type`), or what was not found or stands in the way (`model_id`, `run_id`,
`at_version`, `environment`, `key_id`, `path`, `body`). A 503 comes with `Retry-After`.

| Type | Status | Title | When |
|---|---|---|---|
"""


def render() -> str:
    document = create_app(Settings(_env_file=None)).openapi()
    schemas = document["components"]["schemas"]
    parts = [generated_from("HTTP API", "the OpenAPI document (`api/`)"), INTRO]
    grouped: dict[str, list[str]] = {tag: [] for tag in GROUPS}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            tags = operation.get("tags", [])
            if len(tags) != 1 or tags[0] not in GROUPS:  # (else it would be left out)
                raise ValueError(f"{method} {path}: tags {tags}, not one of {list(GROUPS)}")
            grouped[tags[0]].append(_operation(method, path, operation))
    for tag, title in GROUPS.items():
        parts += [f"## {title}\n\n", *grouped[tag]]
    parts.append(PROBLEMS)
    parts += [f"| `{k.type}` | {k.status} | {k.title} | {cell(k.when)} |\n" for k in KINDS]
    parts.append("\n## Schemas\n\n")
    parts += [_schema(name, schemas[name]) for name in sorted(schemas)]
    return "".join(parts)


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`\n", cell(operation.get("summary", "")) + "\n"]
    if operation.get("description"):
        lines.append(operation["description"].strip() + "\n")
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| Parameter | In | Type | Description |", "|---|---|---|---|"]
        for p in parameters:
            name = f"`{p['name']}`" + (" (required)" if p.get("required") else "")
            schema = p.get("schema", {})
            said = p.get("description", "")
            if "default" in schema:
                default = f"default `{schema['default']}`"
                said = f"{said} ({default})" if said else default
            lines.append(f"| {name} | {p['in']} | {cell(_type(schema))} | {cell(said)} |")
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines.append(f"Body (`{media}`): {_type(content.get('schema', {}))}\n")
    lines.append("Answers:\n")
    problems = []
    for status, answer in sorted(operation["responses"].items()):
        content = answer.get("content", {})
        if PROBLEM_JSON in content:
            problems.append(status)
            continue
        shapes = [f"{_type(c['schema'])} (`{m}`)" for m, c in content.items() if c.get("schema")]
        lines.append(f"- {status} {answer.get('description', '')}" + _joined(shapes))
    if problems:
        lines.append(f"- {', '.join(problems)}: a [problem](#problem-types)")
    return "\n".join(lines) + "\n\n"


def _joined(shapes: list[str]) -> str:
    return (": " + ", ".join(shapes)) if shapes else ""


def _schema(name: str, schema: dict[str, Any]) -> str:
    lines = [f"### {name}\n"]
    if schema.get("description") and name != "Problem":
        lines.append(schema["description"].strip() + "\n")
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    if properties:
        lines += ["| Field | Type | Description |", "|---|---|---|"]
        for field, spec in properties.items():
            shown = f"`{field}`" + (" (required)" if field in required else "")
            lines.append(f"| {shown} | {cell(_type(spec))} | {cell(spec.get('description', ''))} |")
    elif "enum" in schema:
        lines.append("One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".")
    return "\n".join(lines) + "\n\n"


def _type(schema: dict[str, Any]) -> str:
    """A schema in a few words, naming (and linking) the components it refers to."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:  # (null is what an optional field may be: left unsaid)
            return " or ".join(_type(s) for s in schema[key] if s.get("type") != "null")
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    if "format" in schema:
        kind = f"{kind} ({schema['format']})"
    bounds = [
        f"{word} {schema[key]}"
        for key, word in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
        )
        if key in schema
    ]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")
