"""The event log as a JSON-lines file: backup, restore, and moving between stores.

One header line, one line per stored event (its position, model, version,
topic and the stored state as JSON, exactly as the store holds it), and one
footer line with the count and the digest of the log's hash chain (the one
`modelledger audit` computes) through the last event written. The footer is
how an import tells a complete file from one truncated at a line boundary; the
digest, how it tells the events that were written from edited ones.

An export after position N continues the chain from the log's digest at N (the
header's ``after_digest``; it reads the first N events to compute it, without
writing them): the footer's digest is then the log's own at the last position,
as `audit verify` prints it and `audit seal` records it, and an export after N
links to the one that ended at N (its ``after_digest`` is that one's digest).

An import checks the whole file before it writes anything (every line parses,
every event decodes, positions rise, each model's versions run 1, 2, 3 ...
continuing what the target holds, and the events chain to the footer's digest)
and then appends everything in one transaction: a bad file is reported with its
line number and leaves the store as it was. A file written before exports
carried a digest is still imported (``ImportSummary.verified`` is False): one
who can edit a file can as well drop or recompute its digest, so the digest in
the file catches corruption and careless edits, and only a digest kept apart
from the file (``expected_digest``) proves the file is the one exported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from commands.ports import LogPages
from write_model.integrity import GENESIS, chained, lacking_fields
from write_model.model import AIModel

FORMAT = "modelledger-events"
FORMAT_VERSION = 1
PAGE = 1_000
MODEL_CREATED = get_topic(AIModel.ModelCreated)  # (a summary counts models, not keys)

Progress = Callable[[int], None]


class ArchiveError(Exception):
    """The file cannot be imported; ``line`` is 1-based (0: the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class StoreNotEmpty(Exception):
    """An import goes into an empty store only (positions would interleave)."""


@dataclass(frozen=True)
class ExportSummary:
    events: int
    last_position: int
    digest: str  # of the log's hash chain through last_position


@dataclass(frozen=True)
class ImportSummary:
    events: int
    models: int
    first_position: int | None
    last_position: int | None
    digest: str  # of the hash chain over the events imported
    verified: bool  # False: no digest (in the file or given) to check them against


@dataclass
class _Chain:
    """The hash chain over the events read so far, and the footer's claim about it."""

    digest: bytes = GENESIS
    footer_digest: str | None = None


# -- export -----------------------------------------------------------------------------


def export_events(
    event_log: LogPages, out: IO[str], *, after: int = 0, progress: Progress = print
) -> ExportSummary:
    """Write every event after ``after`` to ``out``, then the chain's digest through them."""
    head = event_log.head()
    digest = chain_through(event_log, after)
    header = {"format": FORMAT, "version": FORMAT_VERSION, "after": after, "head": head}
    out.write(
        json.dumps(
            {**header, "after_digest": digest.hex(), "exported_at": datetime.now(UTC).isoformat()}
        )
        + "\n"
    )
    count, position = 0, after
    while page := event_log.page(position, PAGE, until=head or None):
        for notification in page:
            out.write(json.dumps(event_line(notification.id, notification)) + "\n")
            digest = chained(digest, notification)
        count += len(page)
        position = page[-1].id
        progress(len(page))
    footer = {"events": count, "last_position": position, "digest": digest.hex()}
    out.write(json.dumps({"footer": footer}) + "\n")
    return ExportSummary(count, position, digest.hex())


def chain_through(event_log: LogPages, position: int) -> bytes:
    """The digest of the log's hash chain through ``position`` (GENESIS at 0)."""
    digest, after = GENESIS, 0
    while after < position and (page := event_log.page(after, PAGE, until=position)):
        for notification in page:
            digest = chained(digest, notification)
        after = page[-1].id
    return digest


def event_line(position: int, stored: StoredEvent) -> dict[str, Any]:
    return {
        "position": position,
        "model_id": str(stored.originator_id),
        "version": stored.originator_version,
        "topic": stored.topic,
        "state": json.loads(stored.state),
    }


# -- import -----------------------------------------------------------------------------


def import_events(
    recorder: ApplicationRecorder,
    mapper: Mapper[UUID],
    lines: Iterable[str],
    *,
    progress: Progress = print,
    expected_digest: str | None = None,
) -> ImportSummary:
    """Check the whole file (and its digest against ``expected_digest``, if given),
    then append it to an empty store in one transaction."""
    if recorder.max_notification_id():
        raise StoreNotEmpty("the store already holds events; import into an empty store")
    chain = _Chain()
    checked = list(_checked_events(mapper, lines, progress, chain))
    if expected_digest is not None and expected_digest.lower() != chain.digest.hex():
        raise ArchiveError(
            0, f"the events chain to {chain.digest.hex()}, not to the expected {expected_digest}"
        )
    if checked:
        recorder.insert_events([stored for _, stored in checked])
    return ImportSummary(
        events=len(checked),
        models=sum(stored.topic == MODEL_CREATED for _, stored in checked),
        first_position=checked[0][0] if checked else None,
        last_position=checked[-1][0] if checked else None,
        digest=chain.digest.hex(),
        verified=chain.footer_digest is not None or expected_digest is not None,
    )


def _checked_events(
    mapper: Mapper[UUID], lines: Iterable[str], progress: Progress, chain: _Chain
) -> Iterator[tuple[int, StoredEvent]]:
    numbered = enumerate(lines, start=1)
    _check_header(next(numbered, (1, "")))
    versions: dict[UUID | str, int] = {}
    last_position, count = 0, 0
    for number, line in numbered:
        record = _parse(number, line)
        if "footer" in record:
            _check_footer(number, record["footer"], count, chain)
            _check_nothing_after(numbered)
            progress(count % PAGE)
            return
        position, stored = _stored_event(number, record)
        if position <= last_position:
            raise ArchiveError(number, f"position {position} does not follow {last_position}")
        expected = versions.get(stored.originator_id, 0) + 1
        if stored.originator_version != expected:
            raise ArchiveError(
                number,
                f"model {stored.originator_id} version {stored.originator_version}, "
                f"expected {expected}",
            )
        _check_decodes(number, mapper, stored)
        chain.digest = chained(chain.digest, stored)
        versions[stored.originator_id] = expected
        last_position, count = position, count + 1
        if count % PAGE == 0:
            progress(PAGE)
        yield position, stored
    raise ArchiveError(0, f"the file ends without its footer after {count} events: truncated?")


def _parse(number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise ArchiveError(number, f"not JSON ({error}): truncated or corrupt?") from None
    if not isinstance(record, dict):
        raise ArchiveError(number, "expected a JSON object")
    return record


def _check_header(numbered_line: tuple[int, str]) -> None:
    number, line = numbered_line
    if not line.strip():
        raise ArchiveError(number, "the file is empty: expected a header line")
    header = _parse(number, line)
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise ArchiveError(number, f"not a {FORMAT} v{FORMAT_VERSION} file")
    if header.get("after", 0) != 0:
        raise ArchiveError(
            number, f"a partial export (after position {header['after']}) cannot seed a store"
        )


def _check_footer(number: int, footer: Any, count: int, chain: _Chain) -> None:
    if not isinstance(footer, dict) or footer.get("events") != count:
        raise ArchiveError(number, f"the footer does not match the {count} events read")
    if "digest" not in footer:
        return  # written before exports carried one
    chain.footer_digest = str(footer["digest"])
    if chain.footer_digest != chain.digest.hex():
        raise ArchiveError(
            number,
            f"the events chain to {chain.digest.hex()}, not to the footer's digest "
            f"{chain.footer_digest}: an event was changed, removed or added after the export",
        )


def _check_nothing_after(rest: Iterator[tuple[int, str]]) -> None:
    for extra, line in rest:
        if line.strip():
            raise ArchiveError(extra, "data after the footer")


def _stored_event(number: int, record: dict[str, Any]) -> tuple[int, StoredEvent]:
    try:
        position, model_id = record["position"], UUID(record["model_id"])
        version, topic, state = record["version"], record["topic"], record["state"]
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise ArchiveError(number, f"not an event line ({error!r} is missing or bad)") from None
    if not all(isinstance(x, int) and x >= 1 for x in (position, version)):
        raise ArchiveError(number, "position and version must be positive integers")
    if not isinstance(topic, str) or not isinstance(state, dict):
        raise ArchiveError(number, "topic must be a string and state an object")
    encoded = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
    return position, StoredEvent(model_id, version, topic, encoded)


def _check_decodes(number: int, mapper: Mapper[UUID], stored: StoredEvent) -> None:
    try:
        event = mapper.to_domain_event(stored)
    except Exception as error:  # any decoding failure is the file's fault here
        raise ArchiveError(number, f"the event does not decode: {error}") from None
    if missing := lacking_fields(event):
        raise ArchiveError(number, f"the event lacks {', '.join(sorted(missing))}")
