"""The GraphQL endpoint's settings (MODELLEDGER_GRAPHQL_*): what one document may ask.
Kept apart so the main settings stay readable; ``Settings`` has them all."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from api.graphql.limits import GraphqlLimits


class GraphqlSettings(BaseSettings):
    graphql_max_depth: int = Field(
        default=10, ge=1, le=100, description="The deepest a GraphQL selection may nest."
    )
    graphql_max_aliases: int = Field(
        default=10, ge=0, le=1000, description="The most aliases one GraphQL document may use."
    )
    graphql_max_root_fields: int = Field(
        default=10, ge=1, le=1000, description="The most root fields one GraphQL operation may ask."
    )
    graphql_max_tokens: int = Field(
        default=2000,
        ge=100,
        le=1_000_000,
        description="The most tokens a GraphQL document may hold (refused before it is parsed "
        "further).",
    )
    graphql_max_log_reads: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="The most models one GraphQL operation may read from the event log (an "
        "audit trail, a model as of a time): each is a read of all its events, so this bounds "
        "what one query costs.",
    )
    graphql_introspection: bool = Field(
        default=True,
        description="Answer GraphQL introspection (the schema, for GraphiQL and code "
        "generators) to any valid key; `false` turns it off, with field suggestions.",
    )

    def graphql_limits(self) -> GraphqlLimits:
        return GraphqlLimits(
            max_depth=self.graphql_max_depth,
            max_aliases=self.graphql_max_aliases,
            max_root_fields=self.graphql_max_root_fields,
            max_tokens=self.graphql_max_tokens,
            introspection=self.graphql_introspection,
            max_log_reads=self.graphql_max_log_reads,
        )
