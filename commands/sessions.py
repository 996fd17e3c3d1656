"""Signing out of the web UI: the session's end goes into the log, so a copy of its
cookie is refused by every process (``KeyRing.holder`` asks ``session_ended``)."""

from __future__ import annotations

from uuid import UUID

from commands.errors import ConcurrentChange
from commands.registry import CommandContext, ModelRegistry, store_errors
from write_model.ended_session import EndedSession, ended_session_id


def end_session(
    registry: ModelRegistry, session: str, key_id: UUID | None, began: int, ctx: CommandContext
) -> int | None:
    """Record that a session ended; the position of its end (None: it had ended already)."""
    if session_ended(registry, session):
        return None
    ended = EndedSession.end(
        session=session, key_id=str(key_id) if key_id else None, began=began, meta=ctx.meta
    )
    try:
        return registry.commit(ended, ctx).position
    except ConcurrentChange:  # signed out twice at once: one of them recorded it
        return None


def session_ended(registry: ModelRegistry, session: str) -> bool:
    """Whether the log holds the session's end (read now, never from a cache)."""
    with store_errors():
        return bool(list(registry.events.get(ended_session_id(session), lte=1)))
