"""Domain errors: raised by the aggregate before any event is recorded.

Each class says what went wrong in the registry's words; the API maps the
categories (not found, rule violated, invalid value) to HTTP statuses once.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error the write model raises."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    """Something the command refers to does not exist."""


class ModelNotFound(NotFound):
    pass


class TrainingRunNotFound(NotFound):
    pass


class VersionNotFound(NotFound):
    pass


class RuleViolated(DomainError):
    """The command is well formed but the model's current state forbids it."""


class ModelArchived(RuleViolated):
    pass


class TrainingRunFinished(RuleViolated):
    pass


class NoTrainedVersion(RuleViolated):
    pass


class NotDeployed(RuleViolated):
    pass


class NothingToRollBack(RuleViolated):
    pass


class ModelStillDeployed(RuleViolated):
    pass


class DeploymentPending(RuleViolated):
    """A provider is still working on an earlier request for this environment."""


class ManagedRun(RuleViolated):
    """The run's backend reports its outcome: a caller may fail it (to stop it), not complete it."""


class ManagedDeployment(RuleViolated):
    """The environment is served by a provider's endpoint: the registry alone cannot change it."""


class DeploymentRequestNotFound(NotFound):
    pass


class InvalidValue(DomainError):
    """A value breaks a domain rule (e.g. a metric that is not a finite number)."""


class UnknownModelVersion(InvalidValue):
    pass


class DuplicateModelName(DomainError):
    """Another model of the same project already has this name."""


class KeyRevoked(RuleViolated):
    """The key was revoked already."""


class MetricDefinitionNotFound(NotFound):
    """The metric has no declared definition (it takes its default direction)."""


class WebhookDeleted(NotFound):
    """The webhook subscription was deleted: nothing about it changes any more."""
