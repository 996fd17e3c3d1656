"""Declaring how a metric is read (``DefineMetric``) and taking it back to its default
(``RemoveMetricDefinition``): admin commands on the metric's ``MetricDefinition``."""

from __future__ import annotations

from typing import Annotated, Any

from eventsourcing.application import project_aggregate
from pydantic import AfterValidator, Field, StringConstraints

from commands.errors import ConcurrentChange
from commands.messages import ONE_LINE, Command, MetricName, Reason, _one_line
from commands.registry import CommandContext, CommandResult, ModelRegistry, store_errors
from write_model.errors import MetricDefinitionNotFound
from write_model.metric_definition import (
    MAX_UNIT_LENGTH,
    Direction,
    MetricDefinition,
    default_direction,
    metric_definition_id,
)

Unit = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_UNIT_LENGTH),
    AfterValidator(_one_line),
    Field(json_schema_extra={"pattern": ONE_LINE}),
]
# A definition is decided on the metric as it stands; a lost race is decided again.
ATTEMPTS = 3


class DefineMetric(Command):
    name: MetricName
    direction: Direction
    unit: Unit | None = None
    description: Reason | None = None


class RemoveMetricDefinition(Command):
    name: MetricName


def define_metric(
    registry: ModelRegistry, cmd: DefineMetric, ctx: CommandContext
) -> tuple[CommandResult, bool]:
    """Declare the metric as given (the same declaration again records nothing); and
    whether this was its first declaration."""

    def decide() -> tuple[CommandResult, bool]:
        found = read_definition(registry, cmd.name)
        changes: dict[str, Any] = {
            "direction": cmd.direction,
            "unit": cmd.unit,
            "description": cmd.description,
        }
        first = found is None or not found.declared  # (declared again after a removal)
        if found is None:
            found = MetricDefinition.define(name=cmd.name, meta=ctx.meta, **changes)
        else:
            found.redefine(meta=ctx.meta, **changes)
        return registry.commit(found, ctx, **definition_details(found)), first

    decided: tuple[CommandResult, bool] = _decided(decide)
    return decided


def remove_metric_definition(
    registry: ModelRegistry, cmd: RemoveMetricDefinition, ctx: CommandContext
) -> CommandResult:
    def decide() -> CommandResult:
        found = read_definition(registry, cmd.name)
        if found is None or not found.remove(ctx.meta):
            raise MetricDefinitionNotFound(
                f"metric {cmd.name!r} has no definition: it already takes its default "
                f"direction ({default_direction(cmd.name).value})",
                field="name",
            )
        return registry.commit(found, ctx, **definition_details(found))

    result: CommandResult = _decided(decide)
    return result


def _decided(decide: Any) -> Any:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return decide()
        except ConcurrentChange:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def definition_details(found: MetricDefinition) -> dict[str, Any]:
    """What a command's answer says of the metric: how it is read now."""
    declared = found.declared
    return {
        "name": found.name,
        "direction": (found.direction if declared else default_direction(found.name)).value,
        "source": "declared" if declared else "default",
        "unit": found.unit if declared else None,
        "description": found.description if declared else None,
    }


def read_definition(registry: ModelRegistry, name: str) -> MetricDefinition | None:
    """The metric's definition as the log has it now (never a cached copy: another
    process may have changed it)."""
    with store_errors():
        events = list(registry.events.get(metric_definition_id(name)))
    found = project_aggregate(None, events) if events else None
    return found if isinstance(found, MetricDefinition) else None
