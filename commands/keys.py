"""Issuing and revoking API keys: commands, handlers, and the key's text form.

A key reads ``mlk_<key id>_<secret>``: the id finds the ApiKey aggregate, the
secret proves possession. The secret is 32 random bytes, so an unsalted SHA-256
is enough to store it (nothing to brute-force; a slow hash would only slow
every request), and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from eventsourcing.application import project_aggregate
from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from commands.errors import KeyNotFound
from commands.messages import TRIMMED, Command, ProjectName
from commands.registry import CommandContext, CommandResult, ModelRegistry, store_errors
from write_model.access import Role
from write_model.api_key import ApiKey

KEY_PREFIX = "mlk_"
_KEY_TEXT = re.compile(r"^mlk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")

# As ProjectName: the pattern is what a caller may send (spaces or tabs around).
KeyName = Annotated[
    str, StringConstraints(pattern=r"^[ \t]*[A-Za-z0-9][A-Za-z0-9._@-]{0,99}[ \t]*$"), TRIMMED
]


class IssueKey(Command):
    name: KeyName
    role: Role
    projects: Annotated[list[ProjectName], Field(min_length=1, max_length=100)] | None = None

    @field_validator("projects")
    @classmethod
    def _admins_see_everything(
        cls, projects: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        # Refused rather than ignored: whoever asks for a scoped admin expects a limit.
        if info.data.get("role") is Role.ADMIN and projects is not None:
            raise ValueError("an admin key sees every project: leave projects out")
        return projects


class RevokeKey(Command):
    key_id: UUID


@dataclass(frozen=True)
class IssuedKey:
    result: CommandResult
    key: ApiKey
    text: str  # shown once, never stored


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_text(key_id: UUID, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id.hex}_{secret}"


def parse_key_text(text: str) -> tuple[UUID, str] | None:
    """The key id and secret of a well-formed key, else None."""
    match = _KEY_TEXT.match(text)
    return (UUID(hex=match.group(1)), match.group(2)) if match else None


def proves(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_sha256, secret_hash(secret))


def issue_key(registry: ModelRegistry, cmd: IssueKey, ctx: CommandContext) -> IssuedKey:
    key_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    key = ApiKey.issue(
        key_id=key_id,
        name=cmd.name,
        role=cmd.role,
        projects=cmd.projects,
        secret_sha256=secret_hash(secret),
        meta=ctx.meta,
    )
    result = registry.commit(key, ctx)
    return IssuedKey(result, key, key_text(key_id, secret))


def revoke_key(registry: ModelRegistry, cmd: RevokeKey, ctx: CommandContext) -> CommandResult:
    key = read_key(registry, cmd.key_id)
    if key is None:
        raise KeyNotFound(f"key {cmd.key_id} not found", field="key_id")
    key.revoke(ctx.meta)
    return registry.commit(key, ctx)


def read_key(registry: ModelRegistry, key_id: UUID) -> ApiKey | None:
    """The key as the log has it now (never a cached copy: a revocation made by
    another process must count at once)."""
    with store_errors():
        # The first event alone: an id that is not a key's (a model's) costs one row.
        events = list(registry.events.get(key_id, lte=1))
        if not events or not isinstance(events[0], ApiKey.KeyIssued):
            return None
        events += registry.events.get(key_id, gt=1)
    key = project_aggregate(None, events)
    return key if isinstance(key, ApiKey) else None
