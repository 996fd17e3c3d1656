"""The ApiKey aggregate: a key issued to a person or service, and its revocation.

Only a hash of the key's secret is recorded; the secret itself is shown once,
to whoever issued it. Keys are event-sourced so that key management is in the
audit trail like every other change.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from write_model.access import Principal, Role
from write_model.audit import Audited, acting
from write_model.errors import KeyRevoked
from write_model.values import EventMetadata


class ApiKey(Audited):
    class KeyIssued(Audited.Event, Aggregate.Created):
        """An API key is issued: ``name`` is the actor on the events it causes; only the
        SHA-256 of its secret is recorded. Shown in the feed to admins only, without the
        hash, and never published to Kafka."""

        name: str
        role: str
        projects: list[str] | None
        secret_sha256: str

    class KeyRevoked(Audited.Event):
        """The key opens nothing from now on (through another process, within
        ``MODELLEDGER_KEY_CACHE_SECONDS``)."""

    @event(KeyIssued)
    def __init__(
        self,
        *,
        name: str,
        role: str,
        projects: list[str] | None,
        secret_sha256: str,
        actor: str,
    ) -> None:
        self.name = name
        self.role = Role(role)
        self.projects = sorted(projects) if projects is not None else None
        self.secret_sha256 = secret_sha256
        self.issued_by = actor
        self.revoked = False

    @classmethod
    def issue(
        cls,
        *,
        key_id: UUID,
        name: str,
        role: Role,
        projects: list[str] | None,
        secret_sha256: str,
        meta: EventMetadata,
    ) -> ApiKey:
        with acting(meta):
            return cls._create(
                cls.KeyIssued,
                id=key_id,
                name=name,
                role=role.value,
                projects=sorted(set(projects)) if projects is not None else None,
                secret_sha256=secret_sha256,
            )

    def revoke(self, meta: EventMetadata) -> None:
        if self.revoked:
            raise KeyRevoked(f"key {self.id} is already revoked", field="key_id")
        with acting(meta):
            self._revoked()

    @event(KeyRevoked)
    def _revoked(self) -> None:
        self.revoked = True

    @property
    def principal(self) -> Principal:
        projects = frozenset(self.projects) if self.projects is not None else None
        return Principal(self.name, self.role, projects, str(self.id))


KEY_EVENT_TYPES: tuple[type[ApiKey.Event], ...] = (ApiKey.KeyIssued, ApiKey.KeyRevoked)
