"""Given / when / then over the command handlers, reading events back from the store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from commands.handlers import handle_sync as handle
from commands.messages import Command, CompleteTraining, CreateModel, TrainModel
from commands.registry import CommandContext, CommandResult, ModelRegistry
from queries.models import model_history
from queries.ports import EventLog
from write_model.errors import DomainError


class Story:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.event_log = EventLog.of(registry)
        self.model_id: UUID | None = None
        self.run_id: str | None = None
        self._seen = 0

    # -- given --------------------------------------------------------------

    def given(self, *commands: Command) -> Story:
        for command in commands:
            self._run(command, CommandContext())
        self._seen = len(self._events())
        return self

    def a_model(self, name: str = "fraud-detector", **fields: Any) -> Story:
        create = CreateModel(name=name, task="classification", framework="pytorch", **fields)
        result = handle(self.registry, create, CommandContext())
        self.model_id = UUID(result.id)
        self._seen = len(self._events())
        return self

    def a_training_run(self) -> Story:
        result = handle(self.registry, TrainModel(model_id=self.id, dataset="d"), CommandContext())
        self.run_id = result.details["run_id"]
        self._seen = len(self._events())
        return self

    def a_trained_version(self, **metrics: float) -> Story:
        self.a_training_run()
        complete = CompleteTraining(
            model_id=self.id, run_id=self.run, metrics=metrics or {"accuracy": 0.9}
        )
        return self.given(complete)

    @property
    def id(self) -> UUID:
        assert self.model_id is not None, "given a model first"
        return self.model_id

    @property
    def run(self) -> str:
        assert self.run_id is not None, "given a training run first"
        return self.run_id

    # -- when / then --------------------------------------------------------

    def when(self, command: Command, ctx: CommandContext | None = None) -> CommandResult:
        return self._run(command, ctx or CommandContext())

    def then_events(self) -> list[tuple[str, dict[str, Any]]]:
        """The events appended since the last given, as (type, data)."""
        new = self._events()[self._seen :]
        self._seen += len(new)
        return [(item["type"], item["data"]) for item in new]

    def then_rejected(self, command: Command, error: type[DomainError]) -> DomainError:
        before = len(self._events())
        with pytest.raises(error) as raised:
            self._run(command, CommandContext())
        assert len(self._events()) == before, "a rejected command must append nothing"
        return raised.value

    def _run(self, command: Command, ctx: CommandContext) -> CommandResult:
        result = handle(self.registry, command, ctx)
        if self.model_id is None:
            self.model_id = UUID(result.id)
        return result

    def _events(self) -> list[dict[str, Any]]:
        if self.model_id is None:
            return []
        return model_history(self.event_log, self.model_id)
