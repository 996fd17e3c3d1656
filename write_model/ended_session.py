"""A web UI session ended by signing out.

A session is a signed cookie that the server keeps no copy of (ui/sessions.py), so a
copy of one would open pages until it expired. Signing out therefore records the
session's end in the log, where every replica reads it, as a key's revocation is
read. Nothing else about a session is recorded: the aggregate exists only once its
session has ended, under an id derived from the session's own random id.
"""

from __future__ import annotations

import uuid

from eventsourcing.domain import Aggregate, event

from write_model.audit import Audited, acting
from write_model.values import EventMetadata

# Fixed, so an ended session's id is a pure function of the session's id.
ENDED_SESSION_NAMESPACE = uuid.UUID("5d0e2b8a-3c41-4f0a-8e6b-9a7d1c2f4e13")


def ended_session_id(session: str) -> uuid.UUID:
    return uuid.uuid5(ENDED_SESSION_NAMESPACE, session)


class EndedSession(Audited):
    class SessionEnded(Audited.Event, Aggregate.Created):
        """Someone signed out of the web UI: that session's cookie opens nothing from
        now on, wherever it was copied (through another process, within
        ``MODELLEDGER_KEY_CACHE_SECONDS``). ``key_id`` is the key it was signed in
        with (null: the environment's admin key); ``began`` when, in Unix seconds.
        Shown in the feed to admins only, and never published to Kafka."""

        key_id: str | None
        began: int

    @event(SessionEnded)
    def __init__(self, *, key_id: str | None, began: int, actor: str) -> None:
        self.key_id = key_id
        self.began = began
        self.ended_by = actor

    @classmethod
    def end(
        cls, *, session: str, key_id: str | None, began: int, meta: EventMetadata
    ) -> EndedSession:
        with acting(meta):
            return cls._create(
                cls.SessionEnded, id=ended_session_id(session), key_id=key_id, began=began
            )


SESSION_EVENT_TYPES: tuple[type[EndedSession.Event], ...] = (EndedSession.SessionEnded,)
