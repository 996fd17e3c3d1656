"""What a caller may see: the projects in view, and each model's project.

A key scoped to projects sees only their models; anything else answers as if
it did not exist (404, or absent from a list), so its existence does not leak.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from uuid import UUID

from commands.registry import ModelRegistry, store_errors
from write_model.errors import ModelNotFound
from write_model.model import AIModel

Projects = frozenset[str] | None  # None: every project


def projects_in_view(asked: str | None, visible: Projects) -> Projects:
    """The projects a query covers: the one asked for (if visible), else all visible."""
    if asked is None:
        return visible
    return frozenset({asked}) & visible if visible is not None else frozenset({asked})


def ensure_visible(project: str, visible: Projects, model_id: UUID | str) -> None:
    if visible is not None and project not in visible:
        raise ModelNotFound(f"model {model_id} not found", field="model_id")


class ModelProjects:
    """Each model's project, read once from its first event (a model never moves)."""

    def __init__(self, registry: ModelRegistry, size: int = 100_000) -> None:
        self.registry = registry
        self.size = size
        self._known: OrderedDict[UUID, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, model_id: UUID, project: str) -> None:
        with self._lock:
            self._known[model_id] = project
            if len(self._known) > self.size:
                self._known.popitem(last=False)

    def project_of(self, model_id: UUID) -> str | None:
        """The model's project; None when there is no such model."""
        with self._lock:
            if model_id in self._known:
                return self._known[model_id]
        with store_errors():
            first = list(self.registry.events.get(model_id, lte=1))
        if not first or not isinstance(first[0], AIModel.ModelCreated):
            return None
        self.note(model_id, first[0].project)
        return first[0].project
