"""How a metric is read: whether a lower or a higher value is better.

A team declares a metric's direction (``MetricDefinition``, one aggregate per metric
name, so every change is in the audit trail); a metric nobody declared takes its
default from its name (``default_direction``). Leaderboards, ``best_metrics``,
``sort=<metric>`` and statistics apply the direction when they are read, so a
changed definition re-ranks at once and rewrites nothing.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from functools import lru_cache

from eventsourcing.domain import Aggregate, event

from write_model.audit import Audited, acting
from write_model.errors import InvalidValue
from write_model.values import EventMetadata, has_control_characters, validate_metric_name

# Fixed, so a metric's definition id is a pure function of its name.
METRIC_DEFINITION_NAMESPACE = uuid.UUID("0c6a3f1e-7d1b-4f55-9a0e-5b7f6d2c8e41")

MAX_UNIT_LENGTH = 32
MAX_DESCRIPTION_LENGTH = 1000


class Direction(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


# A metric improves as it falls when one part of its name (split on _ - . / @) is one of
# these: losses, errors, times, costs and sizes, error rates and error-like scores; and,
# beyond the first list the registry was asked for, "false" (false_positive_rate and
# kin are error rates) and the error-like names of common tools: XGBoost's logloss,
# mlogloss, merror, rmsle and poisson-nloglik; FID, Brier, ECE and EER.
MINIMISED_PARTS = frozenset(
    {
        *("loss", "error", "err", "latency", "time", "duration", "cost"),
        *("memory", "mem", "size", "bytes", "fpr", "fnr", "wer", "cer", "ter"),
        *("perplexity", "ppl", "mae", "mse", "rmse", "mape", "nll"),
        *("false", "logloss", "mlogloss", "merror", "rmsle", "nloglik"),
        *("fid", "brier", "ece", "eer"),
    }
)
NAME_PARTS = re.compile(r"[_\-./@]")


@lru_cache(maxsize=4096)  # asked per metric by every read that ranks
def default_direction(metric: str) -> Direction:
    """The direction of a metric nobody declared, from the parts of its name."""
    parts = NAME_PARTS.split(metric.lower())
    return Direction.MINIMIZE if MINIMISED_PARTS.intersection(parts) else Direction.MAXIMIZE


def metric_definition_id(name: str) -> uuid.UUID:
    return uuid.uuid5(METRIC_DEFINITION_NAMESPACE, name)


def _line(text: str | None, field: str, limit: int) -> str | None:
    if text is None:
        return None
    if len(text) > limit or has_control_characters(text):
        raise InvalidValue(
            f"{field} must be at most {limit} characters without control characters", field=field
        )
    return text


class MetricDefinition(Audited):
    class MetricDefined(Audited.Event, Aggregate.Created):
        """A metric's direction is declared for the first time (``unit`` and
        ``description`` are the team's words for it)."""

        name: str
        direction: str
        unit: str | None
        description: str | None

    class MetricRedefined(Audited.Event):
        """A metric's declared direction, unit or description changes, or a metric
        whose definition was removed is declared again."""

        name: str
        direction: str
        unit: str | None
        description: str | None

    class MetricDefinitionRemoved(Audited.Event):
        """The metric takes its default direction again (``default_direction``)."""

        name: str

    @event(MetricDefined)
    def __init__(
        self, *, name: str, direction: str, unit: str | None, description: str | None
    ) -> None:
        self.name = name
        self.direction = Direction(direction)
        self.unit = unit
        self.description = description
        self.declared = True

    @classmethod
    def define(
        cls,
        *,
        name: str,
        direction: Direction,
        unit: str | None,
        description: str | None,
        meta: EventMetadata,
    ) -> MetricDefinition:
        validate_metric_name(name, field="name")
        with acting(meta):
            return cls._create(
                cls.MetricDefined,
                id=metric_definition_id(name),
                name=name,
                direction=direction.value,
                unit=_line(unit, "unit", MAX_UNIT_LENGTH),
                description=_line(description, "description", MAX_DESCRIPTION_LENGTH),
            )

    def redefine(
        self,
        *,
        direction: Direction,
        unit: str | None,
        description: str | None,
        meta: EventMetadata,
    ) -> None:
        """Declare it as given; the same definition again records nothing."""
        unit = _line(unit, "unit", MAX_UNIT_LENGTH)
        description = _line(description, "description", MAX_DESCRIPTION_LENGTH)
        if self.declared and (self.direction, self.unit, self.description) == (
            direction,
            unit,
            description,
        ):
            return
        with acting(meta):
            self._redefined(
                name=self.name, direction=direction.value, unit=unit, description=description
            )

    @event(MetricRedefined)
    def _redefined(
        self, name: str, direction: str, unit: str | None, description: str | None
    ) -> None:
        self.direction = Direction(direction)
        self.unit = unit
        self.description = description
        self.declared = True

    def remove(self, meta: EventMetadata) -> bool:
        """Back to the default; False (nothing recorded) when it was not declared."""
        if not self.declared:
            return False
        with acting(meta):
            self._removed(name=self.name)
        return True

    @event(MetricDefinitionRemoved)
    def _removed(self, name: str) -> None:
        self.declared = False


DEFINITION_EVENT_TYPES: tuple[type[MetricDefinition.Event], ...] = (
    MetricDefinition.MetricDefined,
    MetricDefinition.MetricRedefined,
    MetricDefinition.MetricDefinitionRemoved,
)
