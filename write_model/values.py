"""Value objects of the write model: status, metrics, event metadata, identity."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from write_model.errors import InvalidValue

# The built-in backend and deployment target: training results and endpoints are
# reported through the API by whatever runs them; ModelLedger calls nobody.
EXTERNAL = "external"

# Fixed namespace so a model's id is a pure function of (project, name): two
# concurrent creates of one name collide at the event store, not in a race.
MODEL_ID_NAMESPACE = uuid.UUID("6f1c1f55-5f0e-4c58-9c55-0e4a1c7d2b10")

MAX_METRIC_NAME_LENGTH = 100

# What no line of text (a name, a tag, a reason...) may hold: the C0 and C1 controls and
# DEL, the line and paragraph separators, and the invisible characters that make text
# read or compare as other text: zero-width spaces and joiners, direction marks,
# embeddings, overrides and isolates, word joiners, the byte order mark. A character
# class every regular-expression dialect reads alike: the API's schema states it too.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
# What str.strip() removes, in the same form: text that is nothing but this is blank.
WHITE_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


class ModelStatus(StrEnum):
    CREATED = "created"
    TRAINING = "training"
    TRAINED = "trained"
    DEPLOYED = "deployed"
    FAILED = "failed"
    ARCHIVED = "archived"

    @classmethod
    def derive(
        cls, *, archived: bool, deployed: bool, training: bool, last_run_failed: bool, trained: bool
    ) -> ModelStatus:
        """The one rule for a model's status (the aggregate and the catalogue share it)."""
        if archived:
            return cls.ARCHIVED
        if deployed:
            return cls.DEPLOYED
        if training:
            return cls.TRAINING
        if last_run_failed:
            return cls.FAILED
        return cls.TRAINED if trained else cls.CREATED


def instant(moment: datetime) -> str:
    """The one text form of a time: ISO 8601, UTC, always with microseconds,
    so texts sort as the instants do (read tables sort and page on them)."""
    if moment.tzinfo is not UTC:  # the log's times are UTC already: skip the conversion
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def model_id_for(project: str, name: str) -> uuid.UUID:
    return uuid.uuid5(MODEL_ID_NAMESPACE, f"{project}\x00{name}")


def validate_metric_name(name: str, field: str) -> None:
    if not name or len(name) > MAX_METRIC_NAME_LENGTH or has_control_characters(name):
        raise InvalidValue(
            f"metric name {name!r} is not allowed: 1 to {MAX_METRIC_NAME_LENGTH} characters, "
            "no control characters",
            field=field,
        )


def validate_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics are named finite numbers; NaN and infinities are refused."""
    valid: dict[str, float] = {}
    for name, value in metrics.items():
        field = f"metrics.{name}"
        validate_metric_name(name, field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidValue(f"metric {name!r} must be a number", field=field)
        number = float(value)
        if not math.isfinite(number):
            raise InvalidValue(f"metric {name!r} must be finite, got {value!r}", field=field)
        valid[name] = number
    return valid


@dataclass(frozen=True)
class EventMetadata:
    """Who caused an event and why: recorded on every event. An import from another
    registry also says where the fact comes from (``source``: that system's id for it,
    its time, its user) and may record it ``at`` that system's time (the first import
    into an empty registry, so the past reads as that registry looked then)."""

    actor: str
    correlation_id: str
    causation_id: str
    source: Mapping[str, Any] | None = None
    at: datetime | None = None

    def as_event_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "source": dict(self.source) if self.source is not None else None,
        }
        if self.at is not None:
            fields["timestamp"] = self.at  # (else the library stamps the event now)
        return fields
