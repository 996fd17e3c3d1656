"""Who may do what: roles, the principal behind a request, and the one policy.

Pure rules, shared by the API (which asks before running anything) and the
queries (which only return what the principal may see).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # reads
    EDITOR = "editor"  # reads and sends commands
    ADMIN = "admin"  # everything, in every project: keys, projections, operations


class Action(StrEnum):
    READ = "read"
    CHANGE = "change"
    ADMINISTER = "administer"


class AccessError(Exception):
    """Who is asking, or whether they may: apart from the model's rules (DomainError)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotAuthenticated(AccessError):
    """No key, or a key that is unknown, malformed or revoked."""


class NotPermitted(AccessError):
    """The key's role does not permit this."""


RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}
NEEDS = {Action.READ: Role.VIEWER, Action.CHANGE: Role.EDITOR, Action.ADMINISTER: Role.ADMIN}


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the key's name is the actor recorded on its events.

    ``projects`` None means every project; an admin always sees every project.
    """

    name: str
    role: Role
    projects: frozenset[str] | None = None
    key_id: str | None = None

    def may(self, action: Action) -> bool:
        return RANK[self.role] >= RANK[NEEDS[action]]

    def sees(self, project: str) -> bool:
        return self.visible_projects is None or project in self.visible_projects

    @property
    def visible_projects(self) -> frozenset[str] | None:
        """The projects this principal may see; None for all of them."""
        return None if self.role is Role.ADMIN else self.projects

    def allowed(self, action: Action, project: str | None) -> bool:
        """The policy: the role permits the action, and the project (if any) is in scope."""
        return self.may(action) and (project is None or self.sees(project))


ANONYMOUS_ADMIN = Principal("anonymous", Role.ADMIN)  # MODELLEDGER_AUTH=off
