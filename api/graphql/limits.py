"""What one GraphQL document may ask: checked before anything runs, each a setting with a
safe default (MLflow settled on 10 root fields, 10 aliases and depth 10 after
GHSA-49m6-vrr9-2cqm). Query batching (a list of operations in one request) is never
accepted: Strawberry leaves it off unless configured."""

from __future__ import annotations

from collections.abc import Callable
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
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)


@dataclass(frozen=True)
class GraphqlLimits:
    max_depth: int = 10
    max_aliases: int = 10
    max_root_fields: int = 10
    max_tokens: int = 2000
    introspection: bool = True
    max_log_reads: int = 100  # models read from the log per operation (trails, past states)


def limiting_extensions(limits: GraphqlLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories of the extensions that check a document (one set per operation)."""
    root_fields = root_fields_rule(limits.max_root_fields)
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: QueryDepthLimiter(max_depth=limits.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=limits.max_aliases),
        lambda: AddValidationRules([root_fields]),
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return extensions


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
