"""Checks of the event log itself: positions, each model's versions, every event
decodes, and the hash chain over the events against every seal taken of it.

Positions: SQLite assigns them without gaps, so a gap there means a lost row.
PostgreSQL takes them from a sequence, and a transaction that rolls back after
taking one leaves a gap that is harmless: there gaps are reported, not failed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from queries.ports import EventLog
from write_model.integrity import GENESIS, Seal, chained, lacking_fields
from write_model.model import AIModel

PAGE = 5_000
MAX_LISTED = 20  # problems listed per kind; the counts are complete
MODEL_CREATED = get_topic(AIModel.ModelCreated)


@dataclass
class LogReport:
    events: int = 0
    models: int = 0
    head: int = 0
    gaps: int = 0
    gaps_allowed: bool = False
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    gap_examples: list[str] = field(default_factory=list)
    digest: str = GENESIS.hex()  # of the hash chain through the head
    seals_held: int = 0
    latest_held: Seal | None = None

    @property
    def sound(self) -> bool:
        return self.problem_count == 0 and (self.gaps == 0 or self.gaps_allowed)

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


def check_log(
    event_log: EventLog,
    *,
    gaps_allowed: bool,
    seals: Sequence[Seal] = (),
    progress: Callable[[int], None] = print,
) -> LogReport:
    report = LogReport(gaps_allowed=gaps_allowed)
    versions: dict[UUID, int] = {}
    chain = SealCheck(deque(seals))
    after = 0
    while page := event_log.page(after, PAGE):
        for notification in page:
            chain.check(report, before=notification.id)
            chain.digest = chained(chain.digest, notification)
            _check_position(report, after, notification.id)
            _check_version(report, versions, notification)
            _check_decodes(report, event_log, notification)
            report.models += notification.topic == MODEL_CREATED  # (not keys, definitions)
            after = notification.id
        report.events += len(page)
        progress(len(page))
    chain.check(report, before=None)
    report.head, report.digest = after, chain.digest.hex()
    return report


@dataclass
class SealCheck:
    """The hash chain so far, and the seals it has yet to reach."""

    pending: deque[Seal]
    digest: bytes = GENESIS
    held: Seal | None = None

    def check(self, report: LogReport, before: int | None) -> None:
        """The seals of positions before ``before`` (None: all that are left)
        against the chain through the events before it."""
        while self.pending and (before is None or self.pending[0].position < before):
            seal = self.pending.popleft()
            if seal.digest == self.digest.hex():
                report.seals_held += 1
                self.held = report.latest_held = seal
                continue
            since = (
                f" after position {self.held.position} (sealed {self.held.sealed_at}, holds)"
                if self.held
                else ""
            )
            report.problem(
                f"the log up to position {seal.position} is not the one sealed at "
                f"{seal.sealed_at}: an event{since} at or before it was changed, removed or added"
            )


def _check_position(report: LogReport, last: int, position: int) -> None:
    if position != last + 1:
        report.gaps += position - last - 1
        if len(report.gap_examples) < MAX_LISTED:
            report.gap_examples.append(f"positions {last + 1}..{position - 1} are missing")


def _check_version(
    report: LogReport, versions: dict[UUID, int], notification: Notification
) -> None:
    model_id = UUID(str(notification.originator_id))
    expected = versions.get(model_id, 0) + 1
    if notification.originator_version != expected:
        report.problem(
            f"position {notification.id}: model {model_id} version "
            f"{notification.originator_version}, expected {expected}"
        )
    versions[model_id] = max(expected, notification.originator_version)


def _check_decodes(report: LogReport, event_log: EventLog, notification: Notification) -> None:
    try:
        event = event_log.decode(notification)
    except Exception as error:  # whatever the cause, this event cannot be read
        report.problem(f"position {notification.id}: does not decode: {error}")
        return
    if lacking := lacking_fields(event):
        report.problem(f"position {notification.id}: lacks {', '.join(sorted(lacking))}")
