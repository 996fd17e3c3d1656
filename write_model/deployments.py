"""Deployments: what each environment serves, what it served before (the rollback
stack), the requests a provider is still carrying out, and the rules on them.

The aggregate and the catalogue projection both keep an environment's deployment
(the catalogue as this dataclass's dict): ``serving`` and ``Deployment.rolled_back``
are the one rule for how a deploy and a rollback change it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from write_model.errors import (
    DeploymentPending,
    DeploymentRequestNotFound,
    ManagedDeployment,
    NotDeployed,
    NoTrainedVersion,
    UnknownModelVersion,
)
from write_model.values import EXTERNAL


class DeploymentAction(StrEnum):
    DEPLOY = "deploy"
    UNDEPLOY = "undeploy"


@dataclass(frozen=True)
class Deployment:
    """What one environment serves, and the versions it served before (for rollback)."""

    environment: str
    model_version: int
    endpoint_url: str | None
    deployed_at: str
    previous_versions: list[int]  # the rollback stack, newest last
    previous_endpoint_urls: list[str | None]  # one per previous version, restored on rollback
    target: str = EXTERNAL  # who runs the endpoint: "external" (reported) or a provider
    endpoint_name: str | None = None  # the provider's name for it

    @property
    def rollback_target(self) -> tuple[int, str | None] | None:
        """The version (and its endpoint) a rollback returns to; None: nothing before."""
        if not self.previous_versions:
            return None
        return self.previous_versions[-1], self.previous_endpoint_urls[-1]

    def rolled_back(self, *, model_version: int, endpoint_url: str | None, at: str) -> Deployment:
        """Back to the top of the stack, where it was served (target and name stay)."""
        return replace(
            self,
            model_version=model_version,
            endpoint_url=endpoint_url,
            deployed_at=at,
            previous_versions=self.previous_versions[:-1],
            previous_endpoint_urls=self.previous_endpoint_urls[:-1],
        )


def serving(
    current: Deployment | None,
    *,
    environment: str,
    model_version: int,
    endpoint_url: str | None,
    target: str,
    endpoint_name: str | None,
    at: str,
) -> Deployment:
    """What serves after a deploy: the version it replaces goes on the rollback stack,
    unless it is the same version (only its endpoint changed)."""
    versions = list(current.previous_versions) if current else []
    endpoints = list(current.previous_endpoint_urls) if current else []
    if current and current.model_version != model_version:
        versions.append(current.model_version)
        endpoints.append(current.endpoint_url)
    return Deployment(
        environment=environment,
        model_version=model_version,
        endpoint_url=endpoint_url,
        deployed_at=at,
        previous_versions=versions,
        previous_endpoint_urls=endpoints,
        target=target,
        endpoint_name=endpoint_name,
    )


@dataclass(frozen=True)
class DeploymentRequest:
    """A deploy or undeploy a provider is carrying out; one per environment at a time."""

    request_id: str
    action: DeploymentAction
    environment: str
    target: str
    model_version: int | None


# -- rules --------------------------------------------------------------------


def version_to_deploy(model_version: int | None, latest: int) -> int:
    """The version asked for (default: the latest), if it was ever trained."""
    if not latest:
        raise NoTrainedVersion("the model has no trained version to deploy yet", field="model_id")
    version = model_version if model_version is not None else latest
    if not 1 <= version <= latest:
        raise UnknownModelVersion(
            f"version {version} was never trained (latest is {latest})", field="model_version"
        )
    return version


def deployment_in(deployments: dict[str, Deployment], environment: str) -> Deployment:
    deployment = deployments.get(environment)
    if deployment is None:
        raise NotDeployed(f"the model is not deployed in {environment!r}", field="environment")
    return deployment


def require_reported(current: Deployment | None, remedy: str) -> None:
    """Only what the registry was told of (an external endpoint) may it change alone:
    a provider's endpoint changes through that provider."""
    if current is not None and current.target != EXTERNAL:
        raise ManagedDeployment(
            f"{current.environment!r} is served by a {current.target} endpoint: {remedy}",
            field="environment",
        )


def require_no_pending(pending: dict[str, DeploymentRequest], environment: str) -> None:
    request = pending.get(environment)
    if request is not None:
        raise DeploymentPending(
            f"{request.target} is still carrying out request {request.request_id} "
            f"({request.action}) for {environment!r}",
            field="environment",
        )


def pending_request(pending: dict[str, DeploymentRequest], request_id: str) -> DeploymentRequest:
    for request in pending.values():
        if request.request_id == request_id:
            return request
    raise DeploymentRequestNotFound(
        f"no deployment request {request_id!r} is pending", field="request_id"
    )
