"""What a caller may see: the projects in view, and each model's project.

A key scoped to projects sees only their models; anything else answers as if
it did not exist (404, or absent from a list), so its existence does not leak.
"""

from __future__ import annotations

import threading
from uuid import UUID

from cachetools import LRUCache

from queries.errors import UnknownModel
from queries.ports import EventLog
from write_model.model import AIModel

Projects = frozenset[str] | None  # None: every project


def projects_in_view(asked: str | None, visible: Projects) -> Projects:
    """The projects a query covers: the one asked for (if visible), else all visible."""
    if asked is None:
        return visible
    return frozenset({asked}) & visible if visible is not None else frozenset({asked})


def ensure_visible(project: str, visible: Projects, model_id: UUID | str) -> None:
    if visible is not None and project not in visible:
        raise UnknownModel(f"model {model_id} not found", field="model_id")


class ModelProjects:
    """Each model's project, read once from its first event (a model never moves)."""

    def __init__(self, event_log: EventLog, size: int = 100_000) -> None:
        self.event_log = event_log
        self.size = size
        self._known: LRUCache[UUID, str | None] = LRUCache(maxsize=max(size, 1))
        self._lock = threading.Lock()

    def remember(self, model_id: UUID, project: str) -> None:
        with self._lock:
            self._known[model_id] = project  # the least recently used go first

    def project_of(self, model_id: UUID) -> str | None:
        """The model's project; None when there is no such model."""
        with self._lock:
            if model_id in self._known:
                return self._known[model_id]
        first = self.event_log.first_event(model_id)
        if not isinstance(first, AIModel.ModelCreated):
            return None
        self.remember(model_id, first.project)
        return first.project
