"""The web UI's sessions: a stateless cookie signed with the session secret.

A cookie names the API key a user signed in with (its id, never its secret), when the
session began and when it was last used, the session's own random id, and an HMAC-SHA256
of those. It lasts 12 hours
at most, ends after an hour unused, is renewed as it is used, and opens nothing once
its key is revoked or it is signed out (the key ring says so on every request: signing
out records the session's id in the log, commands/sessions.py). Each form carries a token
derived from the session, so a page of another origin cannot post one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from uuid import UUID

COOKIE = "modelledger_session"
LONGEST = 12 * 3600  # seconds a session may last
IDLE = 3600  # seconds unused that end it
RENEW_AFTER = 60  # a used session's cookie is written again at most this often
ENVIRONMENT_KEY = "env"  # the id a session of MODELLEDGER_ADMIN_KEY carries


@dataclass(frozen=True)
class Session:
    key_id: UUID | None  # None: the environment's admin key...
    began: int
    used: int
    id: str  # random: what a sign-out records as ended
    admin_mark: str = ""  # ...and a mark of which one (a changed key ends its sessions)

    @property
    def key_text(self) -> str:
        if self.key_id is None:
            return f"{ENVIRONMENT_KEY}-{self.admin_mark}"
        return self.key_id.hex


def new_session_id() -> str:
    return secrets.token_urlsafe(12)


def admin_mark(secret: bytes, admin_key: str) -> str:
    """What a session of the environment's admin key carries of it: not the key, and
    another key's sessions do not pass for its own."""
    return _mac(secret, "admin." + admin_key)[:16]


def _same(a: str, b: str) -> bool:
    """Compared in constant time; text that is not ASCII (a forged cookie's) is not ours."""
    return a.isascii() and b.isascii() and hmac.compare_digest(a.encode(), b.encode())


def _mac(secret: bytes, text: str) -> str:
    digest = hmac.new(secret, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sealed(secret: bytes, session: Session) -> str:
    body = f"{session.key_text}.{session.began}.{session.used}.{session.id}"
    return f"{body}.{_mac(secret, 'session.' + body)}"


def opened(secret: bytes, cookie: str | None, now: float | None = None) -> Session | None:
    """The session a cookie holds, if it is ours, whole and still in force."""
    if not cookie or len(cookie) > 200:
        return None
    parts = cookie.split(".")
    if len(parts) != 5:
        return None
    key, began_text, used_text, session_id, mac = parts
    if not _same(mac, _mac(secret, f"session.{key}.{began_text}.{used_text}.{session_id}")):
        return None
    try:
        began, used = int(began_text), int(used_text)
        environment = key.startswith(ENVIRONMENT_KEY + "-")
        key_id = None if environment else UUID(hex=key)
    except ValueError:
        return None
    mark = key[len(ENVIRONMENT_KEY) + 1 :] if key_id is None else ""
    moment = time.time() if now is None else now
    if moment - began > LONGEST or moment - used > IDLE:
        return None
    return Session(key_id, began, used, session_id, mark)


def renewed(session: Session, now: float | None = None) -> Session | None:
    """The session marked as used now, when it is time to write it again."""
    moment = int(time.time() if now is None else now)
    if moment - session.used < RENEW_AFTER:
        return None
    return Session(session.key_id, session.began, moment, session.id, session.admin_mark)


def form_token(secret: bytes, session: Session) -> str:
    """The token every form of this session carries."""
    return _mac(secret, f"form.{session.key_text}.{session.began}.{session.id}")


def token_holds(secret: bytes, session: Session, token: str | None) -> bool:
    return token is not None and _same(token, form_token(secret, session))
