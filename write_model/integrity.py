"""What makes the log whole: each event chained to the ones before it, and carrying
who and why. `audit verify` recomputes the chain and checks every seal, so an event
changed, removed or slipped in at or before a sealed position is caught, even one that
still decodes; an export's footer carries the chain's digest, so an import can tell
the events written from edited ones."""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

GENESIS = bytes(32)  # the digest of an empty log


@dataclass(frozen=True)
class Seal:
    """The chain's digest at a position, and when it was taken (`audit seal`)."""

    position: int
    digest: str
    sealed_at: str


def chained(previous: bytes, event: StoredEvent) -> bytes:
    """The chain's digest after one more event: what it is, never where it is
    stored, so a log exported and imported elsewhere has the same digests."""
    h = hashlib.sha256(previous)
    for part in (str(event.originator_id), str(event.originator_version), event.topic):
        encoded = part.encode()
        h.update(len(encoded).to_bytes(8, "big") + encoded)
    h.update(len(event.state).to_bytes(8, "big") + event.state)
    return h.digest()


def lacking_fields(event: Any) -> set[str]:
    """Decoding sets attributes without checking them: the declared ones not set (a
    field with a default, such as an event's ``source``, reads as its default)."""
    if not is_dataclass(event):
        return set()
    required = {f.name for f in fields(event) if f.default is MISSING}
    return required - vars(event).keys()
