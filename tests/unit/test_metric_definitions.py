"""How a metric is read: the default its name gives it, and a team's definition of it.
Given these commands, then these events (in-memory store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.metric_definitions import (
    DefineMetric,
    RemoveMetricDefinition,
    define_metric,
    remove_metric_definition,
)
from commands.registry import CommandContext
from modelledger.bootstrap import Ledger
from queries.directions import Directions
from queries.known_directions import KnownDirections
from tests.support.ledgers import make_ledger
from write_model.errors import InvalidValue, MetricDefinitionNotFound
from write_model.metric_definition import (
    MINIMISED_PARTS,
    Direction,
    MetricDefinition,
    default_direction,
    metric_definition_id,
)
from write_model.values import EventMetadata

MINIMISE, MAXIMISE = Direction.MINIMIZE, Direction.MAXIMIZE
SEPARATORS = "_-./@"
# Words that are parts of metric names and never say "lower is better" on their own.
NEUTRAL = ("accuracy", "f1", "auc", "bleu", "rouge", "recall", "precision", "top5", "rate",
           "score", "map", "ndcg", "val", "eval", "test", "ms", "usd", "mb", "p99", "squad",
           "positive", "interrater", "timeliness", "lossless", "memorability")  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        # what the suffix rule got upside down
        *(("latency_ms", MINIMISE), ("cost_usd", MINIMISE), ("memory_mb", MINIMISE)),
        *(("fpr", MINIMISE), ("false_positive_rate", MINIMISE), ("eval/loss", MINIMISE)),
        # what it got right
        *(("loss", MINIMISE), ("val_loss", MINIMISE), ("p99_latency", MINIMISE)),
        *(("wer", MINIMISE), ("perplexity", MINIMISE), ("Train-Time", MINIMISE)),
        *(("accuracy", MAXIMISE), ("f1", MAXIMISE), ("bleu", MAXIMISE)),
        *(("accuracy@squad", MAXIMISE), ("true_positive_rate", MAXIMISE)),
        # the error-like names of common tools
        *(("mlogloss", MINIMISE), ("poisson-nloglik", MINIMISE), ("fid", MINIMISE)),
        # a part is a whole part: these only contain one
        *(("interrater_agreement", MAXIMISE), ("timeliness", MAXIMISE)),
    ],
)
def test_the_default_direction_of_familiar_names(metric: str, direction: Direction) -> None:
    assert default_direction(metric) is direction


@given(
    parts=st.lists(st.sampled_from(NEUTRAL), min_size=1, max_size=4),
    separators=st.lists(st.sampled_from(SEPARATORS), min_size=4, max_size=4),
    minimised=st.none() | st.sampled_from(sorted(MINIMISED_PARTS)),
    where=st.integers(min_value=0, max_value=4),
    upper=st.booleans(),
)
def test_a_name_is_minimised_exactly_when_one_of_its_parts_is_in_the_table(
    parts: list[str], separators: list[str], minimised: str | None, where: int, upper: bool
) -> None:
    # Given a name of neutral parts, with or without one part from the table, anywhere
    if minimised is not None:
        parts.insert(min(where, len(parts)), minimised)
    name = parts[0] + "".join(sep + part for sep, part in zip(separators, parts[1:], strict=False))
    name = name.upper() if upper else name
    # Then it is minimised exactly when that part is there, whatever the case or separators
    assert default_direction(name) is (MAXIMISE if minimised is None else MINIMISE)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    found = make_ledger("memory://")
    yield found
    found.close()


def events_of(ledger: Ledger, name: str) -> list[tuple[str, dict[str, object]]]:
    stored = ledger.registry.events.get(metric_definition_id(name))
    keep = ("name", "direction", "unit", "description")
    return [(type(e).__name__, {k: getattr(e, k) for k in keep if hasattr(e, k)}) for e in stored]


ADMIN = CommandContext(actor="admin")


def test_a_definition_is_declared_changed_and_removed_and_nothing_twice(ledger: Ledger) -> None:
    registry = ledger.registry
    declared = DefineMetric(name="latency_ms", direction=MAXIMISE, unit="ms")
    assert define_metric(registry, declared, ADMIN)[1] is True  # the first declaration
    assert define_metric(registry, declared, ADMIN)[1] is False
    define_metric(registry, DefineMetric(name="latency_ms", direction=MINIMISE, unit="ms"), ADMIN)
    removed = remove_metric_definition(registry, RemoveMetricDefinition(name="latency_ms"), ADMIN)
    assert (removed.details["source"], removed.details["direction"]) == ("default", "minimize")
    with pytest.raises(MetricDefinitionNotFound):
        remove_metric_definition(registry, RemoveMetricDefinition(name="latency_ms"), ADMIN)
    again, _ = define_metric(registry, DefineMetric(name="latency_ms", direction=MINIMISE), ADMIN)
    assert again.details["source"] == "declared"
    common = {"name": "latency_ms", "unit": "ms", "description": None}
    assert events_of(ledger, "latency_ms") == [
        ("MetricDefined", {**common, "direction": "maximize"}),
        ("MetricRedefined", {**common, "direction": "minimize"}),
        ("MetricDefinitionRemoved", {"name": "latency_ms"}),
        ("MetricRedefined", {**common, "unit": None, "direction": "minimize"}),
    ]


def test_a_metric_nobody_declared_cannot_be_removed(ledger: Ledger) -> None:
    with pytest.raises(MetricDefinitionNotFound) as refused:
        remove_metric_definition(ledger.registry, RemoveMetricDefinition(name="f1"), ADMIN)
    assert refused.value.field == "name"
    assert "maximize" in refused.value.detail


@pytest.mark.parametrize(
    ("name", "unit", "field"),
    [("", None, "name"), ("x" * 101, None, "name"), ("a\x00b", None, "name"),
     ("loss", "m\ns", "unit"), ("loss", "u" * 33, "unit")],
)  # fmt: skip
def test_the_aggregate_refuses_what_no_metric_may_be(
    name: str, unit: str | None, field: str
) -> None:
    meta = EventMetadata("admin", "c", "c")
    with pytest.raises(InvalidValue) as refused:
        MetricDefinition.define(
            name=name, direction=MINIMISE, unit=unit, description=None, meta=meta
        )
    assert refused.value.field == field


# -- what a process knows of the definitions (queries.known_directions) -------------------


def test_known_directions_hold_until_the_next_definition_change_the_watch_saw() -> None:
    known = KnownDirections()
    # Given directions read from the catalogue at position 10 (last changed at 4)
    known.read(Directions({"loss": MAXIMISE}, stamp=4), generation=1, position=10)
    # Then, with no watch yet, they hold only where they were read
    assert known.view().through == 10
    assert known.view().hold_at(1, 10) and not known.view().hold_at(1, 11)
    # When the watch has read every event from 8 to 20, none a definition's
    known.watched(after=8, to=20, changes=[])
    # Then they hold up to 20, in that generation only
    assert known.view().hold_at(1, 20) and not known.view().hold_at(2, 20)
    assert not known.outdated(catalogue=20)
    # When the watch sees a definition change at 25
    known.watched(after=20, to=30, changes=[25])
    # Then they hold up to 24, and are outdated once the catalogue has 25
    assert known.view().through == 24
    assert not known.outdated(catalogue=24) and known.outdated(catalogue=25)
    # When they are read again past it, they hold as far as the watch has looked
    known.read(Directions({}, stamp=25), generation=1, position=26)
    assert known.view().through == 30 and not known.outdated(catalogue=30)


def test_a_gap_in_what_the_watch_saw_or_another_generation_holds_only_where_read() -> None:
    known = KnownDirections()
    known.read(Directions({}, stamp=0), generation=1, position=10)
    known.watched(after=5, to=20, changes=[])
    assert known.view().through == 20
    # a look that does not go on from the last one: what lies between is unknown
    known.watched(after=40, to=50, changes=[])
    assert known.view().through == 10
    # a rebuilt catalogue (another generation), read lower down: only where read
    known.watched(after=50, to=60, changes=[])
    known.read(Directions({}, stamp=0), generation=2, position=30)
    assert known.view().through == 30
    known.watched(after=60, to=70, changes=[])
    assert known.view().through == 30  # (the watch began after it was read)
