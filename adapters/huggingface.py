"""The Hugging Face Hub, through the huggingface_hub SDK: a model source (the importer)
and a deployer (Inference Endpoints).

The SDK makes one request per call (no retries of its own, but for file
downloads); the worker and the importer decide what to retry.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import yaml
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.utils._http import default_client_factory, set_client_factory

from commands.ports import (
    EndpointProgress,
    EndpointSpec,
    EvaluationResult,
    ProviderRejected,
    ProviderUnavailable,
    SourceModel,
    SourceModelNotFound,
)

PUBLIC_HUB = "https://huggingface.co"


class HubSource:
    """Models on the Hub: metadata, card and reported evaluation results."""

    name = "huggingface"

    def __init__(self, endpoint: str | None, token: str | None, timeout: float) -> None:
        use_timeout(timeout)
        self.endpoint = (endpoint or PUBLIC_HUB).rstrip("/")
        self.api = HfApi(endpoint=self.endpoint, token=token or False)
        self.timeout = timeout

    def fetch(self, repo_id: str, revision: str | None = None) -> SourceModel:
        with hub_errors(repo_id):
            info = self.api.model_info(repo_id, revision=revision, timeout=self.timeout)
            card = self._card_text(info)
        data = info.card_data
        return SourceModel(
            repo_id=info.id,
            revision=info.sha or revision or "main",
            task=info.pipeline_tag or "unknown",
            framework=info.library_name or "unknown",
            tags=list(info.tags or []),
            license=_text(data.get("license") if data else None),
            base_model=_text(data.get("base_model") if data else None),
            description=card,
            evaluations=_evaluations(data.eval_results or [] if data else []),
            url=f"{self.endpoint}/{info.id}",
        )

    def _card_text(self, info: ModelInfo) -> str:
        """The card's text without its metadata block ("" without a README)."""
        if not any(s.rfilename == "README.md" for s in info.siblings or []):
            return ""
        # A cache of our own: the SDK's would serve a stale card when the Hub is down.
        with tempfile.TemporaryDirectory(prefix="modelledger-hub-") as cache:
            path = self.api.hf_hub_download(
                info.id, "README.md", revision=info.sha, cache_dir=cache, etag_timeout=self.timeout
            )
            try:
                card = ModelCard.load(path, ignore_metadata_errors=True)
            except (ValueError, yaml.YAMLError) as error:
                reason = f"the model card of {info.id} cannot be read: {error}"
                raise ProviderRejected(reason) from error
            return str(card.text).strip()


class HubEndpoints:
    """Inference Endpoints: one per (model, environment), named by the worker."""

    name = "huggingface"

    def __init__(
        self,
        hub: str | None,
        token: str,
        *,
        namespace: str | None,
        compute: dict[str, str],
        undeploy: str,
        endpoints_url: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        use_timeout(timeout)
        if endpoints_url:
            # The SDK reads this address from a module constant, not from a parameter.
            constants.INFERENCE_ENDPOINTS_ENDPOINT = endpoints_url.rstrip("/")
        self.api = HfApi(endpoint=(hub or PUBLIC_HUB).rstrip("/"), token=token)
        self.token = token  # passed on every call: endpoint objects forget the client's
        self._namespace = namespace
        self.compute = compute  # vendor, region, accelerator, instance size and type
        self.undeploy = undeploy  # delete | pause

    @property
    def namespace(self) -> str:
        if self._namespace is None:  # the token's own user, asked once
            with hub_errors("whoami"):
                self._namespace = str(self.api.whoami(token=self.token)["name"])
        return self._namespace

    def endpoint_name(self, model_id: str, environment: str) -> str:
        """The Hub allows 32 lower-case letters, digits and hyphens: a digest keeps every
        (model, environment) apart, whatever the environment's length or spelling."""
        digest = hashlib.sha256(f"{model_id}/{environment}".encode()).hexdigest()
        return f"ml-{digest[:29]}"

    def deploy(self, spec: EndpointSpec) -> None:
        with hub_errors(spec.repository):
            current = self._get(spec.name)
            if current is None and self._create(spec):
                return
            self._update(spec, paused=current is not None and current.get("state") == "paused")

    def _create(self, spec: EndpointSpec) -> bool:
        """True if created; False if another worker made it first (then it is updated)."""
        namespace, token, compute = self.namespace, self.token, self.compute
        try:
            self.api.create_inference_endpoint(
                spec.name,
                repository=spec.repository,
                revision=spec.revision,
                task=spec.task,
                framework="pytorch",
                vendor=compute["vendor"],
                region=compute["region"],
                accelerator=compute["accelerator"],
                instance_size=compute["instance_size"],
                instance_type=compute["instance_type"],
                namespace=namespace,
                token=token,
            )
        except HfHubHTTPError as error:
            if _status(error) == 409:
                return False
            raise
        return True

    def _update(self, spec: EndpointSpec, *, paused: bool) -> None:
        where: dict[str, Any] = {"namespace": self.namespace, "token": self.token}
        self.api.update_inference_endpoint(
            spec.name, repository=spec.repository, revision=spec.revision, **where
        )
        if paused:
            self.api.resume_inference_endpoint(spec.name, **where)

    def progress(self, endpoint_name: str, spec: EndpointSpec) -> EndpointProgress:
        with hub_errors(endpoint_name):
            found = self._get(endpoint_name, whole=True)
        if found is None:
            return EndpointProgress("failed", reason=f"endpoint {endpoint_name} disappeared")
        status, model = found.get("status") or {}, found.get("model") or {}
        state = status.get("state")
        serves = model.get("repository") == spec.repository and (
            spec.revision is None or model.get("revision") == spec.revision
        )
        if state in ("running", "scaledToZero") and serves:
            return EndpointProgress("running", url=status.get("url"))
        if state in ("failed", "updateFailed"):
            reason = status.get("message") or f"the endpoint is {state}"
            return EndpointProgress("failed", reason=str(reason))
        return EndpointProgress("pending")

    def release(self, endpoint_name: str) -> EndpointProgress:
        where: dict[str, Any] = {"namespace": self.namespace, "token": self.token}
        with hub_errors(endpoint_name):
            status = self._get(endpoint_name)
            if status is None:
                return EndpointProgress("gone")
            if self.undeploy == "delete":
                self.api.delete_inference_endpoint(endpoint_name, **where)
                return EndpointProgress("gone")
            if status.get("state") == "paused":
                return EndpointProgress("gone")
            self.api.pause_inference_endpoint(endpoint_name, **where)
        return EndpointProgress("pending")

    def _get(self, endpoint_name: str, *, whole: bool = False) -> dict[str, Any] | None:
        """The endpoint's status block (``whole``: all of it), or None if there is none."""
        try:
            endpoint = self.api.get_inference_endpoint(
                endpoint_name, namespace=self.namespace, token=self.token
            )
        except HfHubHTTPError as error:
            if _status(error) == 404:
                return None
            raise
        return dict(endpoint.raw) if whole else dict(endpoint.raw.get("status") or {})


@contextmanager
def hub_errors(subject: str) -> Iterator[None]:
    """The SDK's errors -> the port's: retry what can succeed later, end the rest."""
    try:
        yield
    except HFValidationError as error:  # the SDK's own checks of a repo id, before any call
        raise ProviderRejected(f"{subject!r} is not a valid Hub repository id: {error}") from error
    except GatedRepoError as error:  # a RepositoryNotFoundError: first
        raise ProviderRejected(f"{subject} is gated: its token has no access") from error
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise SourceModelNotFound(
            f"the Hub has no model {subject!r} at that revision (or it is private)"
        ) from error
    except HfHubHTTPError as error:
        status = _status(error)
        if status in (401, 403):  # our token, not the request: an operator must fix it
            raise ProviderUnavailable(f"the Hub refused our token ({status})") from error
        if status is None or status in (408, 429) or status >= 500:
            raise ProviderUnavailable(f"the Hub answered {status}: {_said(error)}") from error
        raise ProviderRejected(f"the Hub refused ({status}): {_said(error)}") from error
    except (httpx2.TransportError, OSError) as error:
        raise ProviderUnavailable(f"the Hub is unreachable: {error}") from error


def use_timeout(seconds: float) -> None:
    """The SDK's shared HTTP client waits forever by default; its factory is process-wide."""

    def with_timeout() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(seconds)
        return client

    set_client_factory(with_timeout)


def _evaluations(results: list[Any]) -> list[EvaluationResult]:
    """The card's results with a finite numeric value; names as text, whatever the YAML."""
    found = []
    for result in results:
        value = result.metric_value
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        try:
            number = float(value)
        except OverflowError:
            continue
        if math.isfinite(number):
            found.append(
                EvaluationResult(str(result.metric_type), number, str(result.dataset_type))
            )
    return found


def _status(error: HfHubHTTPError) -> int | None:
    response = getattr(error, "response", None)
    return None if response is None else int(response.status_code)


def _said(error: HfHubHTTPError) -> str:
    """The server's own words where it gave some, else the SDK's first line."""
    response = getattr(error, "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return str(error).splitlines()[0]


def _text(value: Any) -> str | None:
    """A card field that may be a string or a list of them (base_model often is)."""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(value)[:1000] if value else None
