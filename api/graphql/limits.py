"""What one GraphQL document may ask: checked before anything runs, each a setting with a
safe default (MLflow settled on 10 root fields, 10 aliases and depth 10 after
GHSA-49m6-vrr9-2cqm). Query batching (a list of operations in one request) is never
accepted: Strawberry leaves it off unless configured."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator


@dataclass(frozen=True)
class GraphqlLimits:
    max_depth: int = 10
    max_aliases: int = 10
    max_root_fields: int = 10
    max_tokens: int = 2000
    introspection: bool = True
    max_log_reads: int = 100  # models read from the log per operation (trails, past states)


def limiting_extensions(limits: GraphqlLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories of the extensions that check a document (one set per operation).

    A client sends the same few documents again and again, and validating one costs more
    than reading its answer (docs/benchmarks.md, "GraphQL against REST"): parsed documents
    and their validation are kept (Strawberry's bounded LRU caches). Validation is keyed by
    the rules, so they are made once here, not per operation."""
    rules: list[type[ASTValidationRule]] = [
        depth_validator(limits.max_depth, None, None),
        aliases_validator(limits.max_aliases),
        root_fields_rule(limits.max_root_fields),
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: AddValidationRules(rules),
        KeptParse,
        ValidationCache,
    ]


class KeptParse(ParserCache):
    """Strawberry's parse cache, except that a document that does not parse (or is over
    the token limit) is left to Strawberry's own parse, which answers it as an error of
    the answer (raised here, it would escape the answer's error handling)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


def root_fields_rule(most: int) -> type[ValidationRule]:
    """At most ``most`` fields at the root of each operation (fragments spread there
    counted in), each a separate read however small."""

    class RootFields(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            for operation in document.definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                count = _fields(operation.selection_set, fragments, frozenset())
                if count > most:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' asks for {count} root fields; at most {most} "
                            "(MODELLEDGER_GRAPHQL_MAX_ROOT_FIELDS)",
                            [operation],
                        )
                    )

    return RootFields


def _fields(
    selections: SelectionSetNode | None, fragments: dict[str, Any], seen: frozenset[str]
) -> int:
    count = 0
    for node in selections.selections if selections is not None else ():
        if isinstance(node, FieldNode):
            count += 1
        elif isinstance(node, InlineFragmentNode):
            count += _fields(node.selection_set, fragments, seen)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                count += _fields(fragment.selection_set, fragments, seen | {node.name.value})
    return count
