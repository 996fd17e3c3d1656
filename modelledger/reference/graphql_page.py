"""The GraphQL reference: the schema the service serves, as SDL, after a table of its root
fields (from the same schema, so the table and the SDL cannot disagree)."""

from __future__ import annotations

from graphql import GraphQLObjectType, build_schema

from api.graphql.limits import GraphqlLimits
from api.graphql.router import build_schema as ledger_schema
from modelledger.reference.markdown import cell, generated_from

INTRO = """\
`POST /graphql` answers the queries below with the same keys, roles and project scopes as
the REST API, and over the same readers, so both say the same thing. A browser that opens
`/graphql` gets GraphiQL; the `modelEvents` subscription runs over a WebSocket at the
same address (graphql-transport-ws, the key in `connection_init`'s payload). Every answer
carries `extensions.positions`, the log position each root field reflects; every error
carries `extensions.code`, the REST problem type. How to use it, with examples, is in
[Query with GraphQL](../how-to/graphql.md); what one document may ask is in the
[settings](settings.md#graphql).

"""


def render() -> str:
    # The defaults' schema: limits shape what a document may ask, never the schema itself.
    sdl = str(ledger_schema(GraphqlLimits())).strip()
    graphql = build_schema(sdl)  # the SDL read back: the types as a client sees them
    roots = [
        ("Queries", graphql.query_type),
        ("Subscriptions (over the WebSocket only)", graphql.subscription_type),
    ]
    tables = "".join(_roots(title, kind) for title, kind in roots if kind is not None)
    return (
        generated_from("GraphQL", "the schema in `api/graphql/` (Strawberry)")
        + INTRO
        + tables
        + "## Schema\n\n"
        + "```graphql\n"
        + sdl
        + "\n```\n"
    )


def _roots(title: str, kind: GraphQLObjectType) -> str:
    rows = ["| Field (arguments) | Answers | Meaning |", "|---|---|---|"]
    for name, field in kind.fields.items():
        called = f"{name}({', '.join(field.args)})" if field.args else name
        meaning = cell(field.description or "")
        rows.append(f"| `{called}` | `{cell(str(field.type))}` | {meaning} |")
    return f"## {title}\n\n" + "\n".join(rows) + "\n\n"
