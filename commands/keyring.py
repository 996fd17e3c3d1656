"""Who is calling: a Bearer key -> the principal it stands for.

Keys are read from the log (not a projection) so that a key works the moment
it is issued and stops the moment it is revoked. A verified key is kept for
``ttl`` seconds so a request costs no store read; a revocation in this process
forgets it at once, one in another process counts within ``ttl``.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field
from uuid import UUID

from cachetools import TTLCache

from commands.keys import parse_key_text, proves, read_key
from commands.registry import ModelRegistry
from commands.sessions import session_ended
from write_model.access import NotAuthenticated, Principal, Role
from write_model.api_key import ApiKey

ENV_ADMIN_NAME = "admin"  # the principal of MODELLEDGER_ADMIN_KEY
MAX_KEYS = 100_000
ENDED_KEPT = 24 * 3600  # seconds an ended session is remembered: longer than any lasts


@dataclass
class KeyRing:
    registry: ModelRegistry
    ttl: float = 1.0
    admin_key: str | None = None  # from the environment: an admin without an event
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _forgets: int = 0  # a read that began before a revocation here must not be kept

    def __post_init__(self) -> None:
        # Keys read from the store, trusted for ``ttl`` seconds (a revocation elsewhere
        # is seen within that); the least recently used go first past MAX_KEYS.
        self._verified: TTLCache[UUID, ApiKey] = TTLCache(maxsize=MAX_KEYS, ttl=self.ttl)
        # Web UI sessions: an ended one stays ended; one in force is asked again after ttl.
        self._ended: TTLCache[str, bool] = TTLCache(maxsize=MAX_KEYS, ttl=ENDED_KEPT)
        self._in_force: TTLCache[str, bool] = TTLCache(maxsize=MAX_KEYS, ttl=self.ttl)

    def cached(self, text: str) -> Principal | None:
        """The principal from memory alone (no I/O), or None if the store must be asked."""
        # As bytes: compare_digest refuses str with non-ASCII characters (a header may hold them).
        if self.admin_key is not None and hmac.compare_digest(
            text.encode(errors="surrogateescape"), self.admin_key.encode()
        ):
            return Principal(ENV_ADMIN_NAME, Role.ADMIN)
        parsed = parse_key_text(text)
        if parsed is None:
            raise NotAuthenticated("the API key is malformed", field="Authorization")
        key_id, secret = parsed
        with self._lock:
            key = self._verified.get(key_id)
        if key is None:
            return None
        return _principal(key, secret)

    def authenticate(self, text: str) -> Principal:
        """The principal of a key, reading the store when memory does not know it."""
        principal = self.cached(text)
        if principal is not None:
            return principal
        parsed = parse_key_text(text)
        assert parsed is not None  # cached() refused the malformed
        key_id, secret = parsed
        forgets = self._forgets
        key = read_key(self.registry, key_id)
        if key is None:
            raise NotAuthenticated("the API key is not known", field="Authorization")
        with self._lock:
            if not key.revoked and forgets == self._forgets:
                self._verified[key_id] = key
        return _principal(key, secret)

    def holder(self, key_id: UUID | None, session: str | None = None) -> Principal:
        """The principal of a key known by its id alone (a signed session names it; the
        environment's admin key is ``None``), while the key and the session are in force."""
        if session is not None and self._session_ended(session):
            raise NotAuthenticated("the session was signed out", field="session")
        if key_id is None:
            if self.admin_key is None:
                raise NotAuthenticated("the session's key is not known", field="session")
            return Principal(ENV_ADMIN_NAME, Role.ADMIN)
        with self._lock:
            key = self._verified.get(key_id)
        if key is None:
            forgets = self._forgets
            key = read_key(self.registry, key_id)
            if key is None:
                raise NotAuthenticated("the session's key is not known", field="session")
            with self._lock:
                if not key.revoked and forgets == self._forgets:
                    self._verified[key_id] = key
        if key.revoked:
            raise NotAuthenticated("the session's key was revoked", field="session")
        return key.principal

    def _session_ended(self, session: str) -> bool:
        with self._lock:
            if session in self._ended:
                return True
            if session in self._in_force:
                return False
        ended = session_ended(self.registry, session)
        with self._lock:
            if ended:
                self._ended[session] = True
            elif session not in self._ended:  # (unless it ended here meanwhile)
                self._in_force[session] = True
        return ended

    def session_ends(self, session: str) -> None:
        """A sign-out in this process: its session is refused here at once."""
        with self._lock:
            self._in_force.pop(session, None)
            self._ended[session] = True

    def forget(self, key_id: UUID) -> None:
        with self._lock:
            self._verified.pop(key_id, None)
            self._forgets += 1


def _principal(key: ApiKey, secret: str) -> Principal:
    if not proves(key, secret):
        raise NotAuthenticated("the API key is not known", field="Authorization")
    if key.revoked:
        raise NotAuthenticated("the API key was revoked", field="Authorization")
    return key.principal
