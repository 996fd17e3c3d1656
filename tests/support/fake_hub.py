"""A fake Hugging Face Hub and Inference Endpoints API over real HTTP, for the real SDK.

Tests start a ``FakeHub`` and point the real ``huggingface_hub`` SDK at it, so the adapters
are exercised end to end (HTTP, headers, error mapping, JSON parsing) with no internet::

    with FakeHub() as hub:
        sha = hub.add_model("acme/sentiment")
        api = HfApi(endpoint=hub.url, token=hub.token)
        info = api.model_info("acme/sentiment")            # GET /api/models/acme/sentiment
        path = api.hf_hub_download("acme/sentiment", "README.md", revision=sha, cache_dir=tmp)
        monkeypatch.setattr(huggingface_hub.constants, "INFERENCE_ENDPOINTS_ENDPOINT",
                            hub.endpoints_url)                 # f"{hub.url}/endpoints/v2"
        endpoint = api.create_inference_endpoint("sentiment-prod", repository="acme/sentiment", ...)

What is served (shapes follow the real services closely enough for ``huggingface_hub`` 2.4.0):

* ``GET /api/whoami-v2``
* ``GET /api/models/{repo_id}`` and ``/api/models/{repo_id}/revision/{rev}`` (``expand``,
  ``securityStatus`` and ``blobs`` query parameters; others are ignored)
* ``HEAD``/``GET /{repo_id}/resolve/{rev}/{filename}`` with ``ETag``, ``X-Repo-Commit`` and
  ``Content-Length``, as ``hf_hub_download`` needs
* ``/endpoints/v2/endpoint/{namespace}[/{name}[/pause|/resume|/scale-to-zero]]``
* ``/inference/{name}[/...]``: the deployed endpoint itself (any ``GET`` is its health route,
  ``POST`` answers a canned prediction) while it is running

Errors carry the ``X-Error-Code`` / ``X-Error-Message`` headers the SDK maps to its exception
types (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.local_server import LocalServer, serve_in_thread

JSON: TypeAlias = dict[str, Any]
Gated: TypeAlias = Literal[False, "auto", "manual"]
Outcome: TypeAlias = Literal["running", "failed"]

DEFAULT_TOKEN = "hf_test"
DEFAULT_USER = "modelledger-test"
ENDPOINTS_PREFIX = "/endpoints/v2"

DEFAULT_EVAL_RESULTS: tuple[Mapping[str, Any], ...] = (
    {
        "task_type": "text-classification",
        "dataset_type": "imdb",
        "dataset_name": "IMDb",
        "metric_type": "accuracy",
        "metric_value": 0.93,
    },
)

_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
_REPO_NOT_FOUND = "Repository not found"
_DISABLED = "Access to this resource is disabled."
_EXPANDABLE = frozenset(
    {
        "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt",
        "disabled", "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
        "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
        "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha",
        "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage",
        "widgetData",
    }
)  # fmt: skip
_SETTINGS = frozenset({"gated", "private", "disabled", "downloads", "likes"})
_CONTENT = frozenset(
    {
        "pipeline_tag", "library_name", "tags", "license", "base_model", "datasets", "language",
        "model_name", "card_text", "eval_results", "files",
    }
)  # fmt: skip
_REQUIRED_EVAL_KEYS = ("task_type", "dataset_type", "dataset_name", "metric_type", "metric_value")
_AUTO_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "fill-mask": "AutoModelForMaskedLM",
    "text-generation": "AutoModelForCausalLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "summarization": "AutoModelForSeq2SeqLM",
    "translation": "AutoModelForSeq2SeqLM",
    "feature-extraction": "AutoModel",
    "image-classification": "AutoModelForImageClassification",
}
_ENDPOINT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_ENDPOINT_TYPES = frozenset({"public", "authenticated", "private", "protected"})
_STATE_MESSAGES = {
    "pending": "Endpoint waiting to be scheduled",
    "initializing": "Endpoint is initializing",
    "updating": "Endpoint is updating",
    "running": "Endpoint is running",
    "paused": "Endpoint is paused",
    "scaledToZero": "Endpoint is scaled to zero",
    "failed": "Endpoint failed to start",
    "updateFailed": "Endpoint failed to update",
}
_CREATE_REJECTIONS = {
    400: "Bad Request: the requested instance is not available in this region",
    402: "Payment Required: add a payment method to your account to create an Inference Endpoint",
    403: "Forbidden: you do not have the permission to create an endpoint in this namespace",
    429: "Too Many Requests: quota exceeded for this instance type",
}


def _now() -> str:
    """Hub-style timestamp, e.g. ``2024-05-01T12:00:00.123Z`` (what ``parse_datetime`` expects)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _object_id(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:24]


def _git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _error(status: int, message: str, *, code: str | None = None) -> JSONResponse:
    """A Hub API error: JSON ``{"error": ...}`` plus the headers ``hf_raise_for_status`` reads."""
    # Header values are Latin-1: a revision asked for may be any text (the Hub escapes it).
    headers = {"X-Error-Message": message.encode("ascii", "backslashreplace").decode()}
    if code is not None:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _endpoint_error(status: int, message: str) -> JSONResponse:
    """An Inference Endpoints API error: only a JSON body, like the real service."""
    return JSONResponse({"error": message}, status_code=status)


def _merge(target: JSON, patch: Mapping[str, Any]) -> None:
    """Deep-merge an update payload; ``image`` / ``env`` / ``secrets`` are replaced whole."""
    for key, value in patch.items():
        current = target.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(current, dict)
            and key not in {"image", "env", "secrets"}
        ):
            _merge(current, value)
        else:
            target[key] = copy.deepcopy(value)


def _model_index(model_name: str, results: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """The Hub's ``model-index`` format, grouped like ``eval_results_to_model_index`` does."""
    groups: dict[tuple[Any, ...], JSON] = {}
    for result in results:
        missing = [key for key in _REQUIRED_EVAL_KEYS if key not in result]
        if missing:
            raise ValueError(f"eval result {dict(result)!r} lacks {missing}")
        key = (
            result["task_type"],
            result["dataset_type"],
            result.get("dataset_config"),
            result.get("dataset_split"),
            result.get("dataset_revision"),
        )
        group = groups.get(key)
        if group is None:
            task_type = str(result["task_type"])
            dataset: JSON = {"name": result["dataset_name"], "type": result["dataset_type"]}
            for source_key, target_key in (
                ("dataset_config", "config"),
                ("dataset_split", "split"),
                ("dataset_revision", "revision"),
                ("dataset_args", "args"),
            ):
                if result.get(source_key) is not None:
                    dataset[target_key] = result[source_key]
            group = {
                "task": {
                    "type": task_type,
                    "name": result.get("task_name") or task_type.replace("-", " ").title(),
                },
                "dataset": dataset,
                "metrics": [],
            }
            if result.get("source_url") is not None:
                source: JSON = {"url": result["source_url"]}
                if result.get("source_name") is not None:
                    source["name"] = result["source_name"]
                group["source"] = source
            groups[key] = group
        metric: JSON = {
            "type": result["metric_type"],
            "value": result["metric_value"],
            "name": result.get("metric_name") or str(result["metric_type"]).title(),
        }
        for source_key, target_key in (
            ("metric_config", "config"),
            ("metric_args", "args"),
            ("verified", "verified"),
            ("verify_token", "verifyToken"),
        ):
            if result.get(source_key) is not None:
                metric[target_key] = result[source_key]
        group["metrics"].append(metric)
    return [{"name": model_name, "results": list(groups.values())}]


def _split_front_matter(text: str) -> tuple[JSON, str]:
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n?(.*)$", text, flags=re.DOTALL)
    if match is None:
        return {}, text
    data = yaml.safe_load(match.group(1)) or {}
    if not isinstance(data, dict):
        raise ValueError("README front matter must be a YAML mapping")
    return data, match.group(2)


@dataclass(frozen=True)
class _Commit:
    """One revision of a model repo: its content (card, files) at that sha."""

    sha: str
    date: str
    params: Mapping[str, Any]
    card_data: JSON
    files: Mapping[str, bytes]

    @property
    def pipeline_tag(self) -> str | None:
        value = self.params["pipeline_tag"]
        return None if value is None else str(value)

    @property
    def library_name(self) -> str | None:
        value = self.params["library_name"]
        return None if value is None else str(value)


@dataclass
class _Repo:
    repo_id: str
    created_at: str
    settings: dict[str, Any]
    commits: list[_Commit] = field(default_factory=list)
    access_granted: bool = False

    @property
    def head(self) -> _Commit:
        return self.commits[-1]

    def resolve(self, revision: str | None) -> _Commit | None:
        if revision is None or revision == "main":
            return self.head
        for commit in reversed(self.commits):
            if commit.sha == revision:
                return commit
        return None


@dataclass(frozen=True)
class _Plan:
    steps_to_running: int = 2
    outcome: Outcome = "running"
    message: str | None = None


@dataclass
class _Endpoint:
    namespace: str
    raw: JSON
    queue: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    @property
    def state(self) -> str:
        return str(self.raw["status"]["state"])


@dataclass
class _Failure:
    remaining: int
    status: int
    message: str
    path_prefix: str | None


class FakeHub:
    """The Hub + Inference Endpoints API on ``http://127.0.0.1:<port>``, in a daemon thread.

    All state is guarded by one lock: knobs may be called from the test thread while the
    server thread answers the SDK.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        user: str = DEFAULT_USER,
        orgs: Sequence[str] = (),
    ) -> None:
        self.token = token
        self.user = user
        self.orgs = tuple(orgs)
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._default_plan = _Plan()
        self._plans: dict[str, _Plan] = {}
        self._create_rejections: list[tuple[int, str]] = []
        self._failures: list[_Failure] = []
        self._requests: list[tuple[str, str]] = []
        self._url: str | None = None
        self._server: LocalServer | None = None
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        self._app = Starlette(
            routes=[
                Route("/", self._dispatch, methods=methods),
                Route("/{path:path}", self._dispatch, methods=methods),
            ]
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL, no trailing slash: pass it as ``HfApi(endpoint=...)``."""
        if self._url is None:
            raise RuntimeError("FakeHub is not started")
        return self._url

    @property
    def endpoints_url(self) -> str:
        """Value for ``huggingface_hub.constants.INFERENCE_ENDPOINTS_ENDPOINT``."""
        return f"{self.url}{ENDPOINTS_PREFIX}"

    def start(self) -> FakeHub:
        """Bind a free port on 127.0.0.1 and serve until ``stop()``."""
        if self._server is not None:
            raise RuntimeError("FakeHub is already started")
        self._server = serve_in_thread(self._app, "fake-hub")
        self._url = f"http://127.0.0.1:{self._server.port}"
        return self

    def stop(self) -> None:
        """Shut the server down (idempotent). State is kept, but the URL is gone."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ knobs: models

    def add_model(
        self,
        repo_id: str,
        *,
        pipeline_tag: str | None = "text-classification",
        library_name: str | None = "transformers",
        tags: Sequence[str] = (),
        license: str | None = "apache-2.0",
        base_model: str | Sequence[str] | None = None,
        datasets: Sequence[str] = (),
        language: str | Sequence[str] | None = "en",
        model_name: str | None = None,
        card_text: str | None = None,
        eval_results: Sequence[Mapping[str, Any]] = DEFAULT_EVAL_RESULTS,
        files: Mapping[str, str | bytes] | None = None,
        gated: bool | Literal["auto", "manual"] = False,
        private: bool = False,
        disabled: bool = False,
        downloads: int = 0,
        likes: int = 0,
    ) -> str:
        """Create (or replace) a model repo with one commit on ``main``; return its sha.

        The README is YAML front matter built from the card fields (``license``,
        ``base_model``, ``tags``, ``datasets``, ``language``, ``library_name``,
        ``pipeline_tag`` and a ``model-index`` built from ``eval_results``, named
        ``model_name`` or the repo name) followed by ``card_text``. A ``card_text`` that
        starts with ``---`` is used verbatim as the whole README, and ``cardData`` is then
        parsed from its front matter. Each eval result needs ``task_type``,
        ``dataset_type``, ``dataset_name``, ``metric_type`` and ``metric_value``; optional:
        ``task_name``, ``metric_name``, ``dataset_config``, ``dataset_split``,
        ``dataset_revision``, ``dataset_args``, ``metric_config``, ``metric_args``,
        ``verified``, ``verify_token``, ``source_url``, ``source_name``. Pass
        ``eval_results=()`` for a card without a model-index.

        ``files`` adds repo files (``config.json`` and ``.gitattributes`` exist by default).
        ``gated`` (``True`` means ``"manual"``): metadata stays public, as on the Hub, but
        every file (README included) needs the token *and* ``grant_access()``: 401 without
        a token, 403 without access, both with ``X-Error-Code: GatedRepo``. ``private``: 401
        ``RepoNotFound`` without the token. ``disabled``: 403 "Access to this resource is
        disabled." (``DisabledRepoError``). The settings ``gated``, ``private``,
        ``disabled``, ``downloads`` and ``likes`` belong to the repo, not to a revision.
        """
        params: dict[str, Any] = {
            "pipeline_tag": pipeline_tag,
            "library_name": library_name,
            "tags": tags,
            "license": license,
            "base_model": base_model,
            "datasets": datasets,
            "language": language,
            "model_name": model_name,
            "card_text": card_text,
            "eval_results": eval_results,
            "files": files,
        }
        settings = {
            "gated": self._gated(gated),
            "private": private,
            "disabled": disabled,
            "downloads": downloads,
            "likes": likes,
        }
        with self._lock:
            repo = _Repo(repo_id=repo_id, created_at=_now(), settings=settings)
            repo.commits.append(self._commit(repo, params))
            self._repos[repo_id] = repo
            return repo.head.sha

    def update_model(self, repo_id: str, **changes: Any) -> str:
        """Push a new commit to ``main`` with ``changes`` (any ``add_model`` keyword) applied.

        Everything not named keeps its value; older shas stay resolvable, so
        ``model_info(repo_id, revision=old_sha)`` still shows the old card. Returns the new sha.
        """
        unknown = set(changes) - _SETTINGS - _CONTENT
        if unknown:
            raise TypeError(f"update_model() got unknown fields {sorted(unknown)}")
        with self._lock:
            repo = self._repo_or_raise(repo_id)
            for key in _SETTINGS & set(changes):
                value = changes[key]
                repo.settings[key] = self._gated(value) if key == "gated" else value
            params = {**repo.head.params, **{k: v for k, v in changes.items() if k in _CONTENT}}
            repo.commits.append(self._commit(repo, params))
            return repo.head.sha

    def delete_model(self, repo_id: str) -> None:
        """Remove a repo: it answers 404 ``RepoNotFound`` from then on."""
        with self._lock:
            self._repo_or_raise(repo_id)
            del self._repos[repo_id]

    def grant_access(self, repo_id: str, granted: bool = True) -> None:
        """Let the test user (valid token) download a gated repo's files, or revoke it (403)."""
        with self._lock:
            self._repo_or_raise(repo_id).access_granted = granted

    def model_sha(self, repo_id: str) -> str:
        """The current ``main`` sha of a repo."""
        with self._lock:
            return self._repo_or_raise(repo_id).head.sha

    def readme(self, repo_id: str, revision: str | None = None) -> str:
        """The README.md text served for ``repo_id`` at ``revision`` (default ``main``)."""
        with self._lock:
            commit = self._repo_or_raise(repo_id).resolve(revision)
            if commit is None:
                raise KeyError(f"{repo_id} has no revision {revision}")
            return commit.files["README.md"].decode()

    # ------------------------------------------------------------------ knobs: endpoints

    def plan_endpoints(
        self,
        steps_to_running: int = 2,
        outcome: Outcome = "running",
        message: str | None = None,
        *,
        name: str | None = None,
    ) -> None:
        """How the next deployments (create, update, resume) progress.

        A deployment answers its first state (``pending`` for create, ``updating`` for
        update, ``initializing`` for resume), then each ``GET`` of that endpoint advances one
        step (``initializing``, or ``updating`` for an update) until, at the
        ``steps_to_running``-th GET, it reaches ``outcome``: ``running`` (with
        ``status.url = f"{url}/inference/{name}"``) or ``failed`` (``updateFailed`` for an
        update), with ``message`` as ``status.message``. ``steps_to_running=0`` reaches the
        outcome in the create/update/resume response itself. With ``name``, the plan is for
        that endpoint only; otherwise it is the default for all. Listing does not advance.
        """
        if steps_to_running < 0:
            raise ValueError("steps_to_running must be >= 0")
        plan = _Plan(steps_to_running=steps_to_running, outcome=outcome, message=message)
        with self._lock:
            if name is None:
                self._default_plan = plan
            else:
                self._plans[name] = plan

    def reject_next_create(self, status: int = 400, message: str | None = None) -> None:
        """Make the next endpoint create (``POST /endpoint/{ns}``) fail with ``status``.

        E.g. 400 (bad hardware), 402 (no payment method), 403, 429 (quota). Calls queue up:
        two calls reject the next two creates. Nothing is created.
        """
        text = message or _CREATE_REJECTIONS.get(status, f"Request rejected with {status}")
        with self._lock:
            self._create_rejections.append((status, text))

    def fail_next_requests(
        self,
        n: int,
        status: int = 503,
        *,
        path_prefix: str | None = None,
        message: str | None = None,
    ) -> None:
        """Transient outage: the next ``n`` requests answer ``status`` with an error body.

        Requests whose path starts with ``path_prefix`` count (e.g. ``"/endpoints/v2"`` or
        ``"/api/models/"``); without one, every request does (health checks included).
        Failed requests still appear in ``requests`` and change no state.
        """
        text = message or ("Service Unavailable" if status == 503 else f"HTTP {status}")
        with self._lock:
            self._failures.append(
                _Failure(remaining=n, status=status, message=text, path_prefix=path_prefix)
            )

    def set_endpoint_state(self, name: str, state: str, message: str | None = None) -> None:
        """Force an endpoint into ``state`` now (e.g. ``"failed"`` after it was running)."""
        with self._lock:
            endpoint = self._endpoint_by_name(name)
            if endpoint is None:
                raise KeyError(name)
            endpoint.queue.clear()
            self._set_state(endpoint, state, message)

    @property
    def endpoints(self) -> dict[str, JSON]:
        """Snapshot of every endpoint's raw JSON, by name (any namespace)."""
        with self._lock:
            return {ep.name: copy.deepcopy(ep.raw) for ep in self._endpoints.values()}

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request received so far, as ``(method, decoded path)``, without query."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ model internals

    @staticmethod
    def _gated(value: object) -> Gated:
        if value is True:
            return "manual"
        if value is False or value is None:
            return False
        if value in ("auto", "manual"):
            return "auto" if value == "auto" else "manual"
        raise ValueError(f"gated must be a bool, 'auto' or 'manual', not {value!r}")

    def _repo_or_raise(self, repo_id: str) -> _Repo:
        repo = self._repos.get(repo_id)
        if repo is None:
            raise KeyError(f"no model {repo_id!r} in the fake Hub")
        return repo

    def _commit(self, repo: _Repo, params: Mapping[str, Any]) -> _Commit:
        name = params["model_name"] or repo.repo_id.rsplit("/", 1)[-1]
        card_text = params["card_text"]
        if card_text is None:
            card_text = f"# {name}\n\nA model served by the ModelLedger fake Hub for tests.\n"
        if card_text.lstrip().startswith("---"):
            readme = card_text
            card_data, _ = _split_front_matter(card_text)
        else:
            card_data = self._card_data(name, params)
            front = yaml.safe_dump(card_data, sort_keys=False, allow_unicode=True)
            readme = f"---\n{front}---\n\n{card_text}" if card_data else card_text
        files: dict[str, bytes] = {
            ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        }
        auto_class = _AUTO_CLASSES.get(params["pipeline_tag"] or "")
        if params["library_name"] == "transformers" and auto_class is not None:
            architecture = auto_class.replace("AutoModel", "Bert")
            config = {"architectures": [architecture], "model_type": "bert"}
            files["config.json"] = json.dumps(config, indent=2).encode()
        for path, content in (params["files"] or {}).items():
            if path == "README.md":
                raise ValueError("set the README with card_text, not files")
            files[path] = content.encode() if isinstance(content, str) else bytes(content)
        files["README.md"] = readme.encode()
        stored = {
            key: (tuple(dict(r) for r in value) if key == "eval_results" else value)
            for key, value in params.items()
        }
        seed = f"{repo.repo_id}\n{len(repo.commits)}\n{readme}\n{sorted(files)}"
        sha = hashlib.sha1(seed.encode()).hexdigest()
        if any(commit.sha == sha for commit in repo.commits):
            sha = hashlib.sha1(f"{seed}\n{time.time_ns()}".encode()).hexdigest()
        return _Commit(sha=sha, date=_now(), params=stored, card_data=card_data, files=files)

    @staticmethod
    def _card_data(name: str, params: Mapping[str, Any]) -> JSON:
        data: JSON = {}
        language = _as_list(params["language"])
        if language:
            data["language"] = language[0] if len(language) == 1 else language
        if params["license"] is not None:
            data["license"] = params["license"]
        if params["library_name"] is not None:
            data["library_name"] = params["library_name"]
        if params["tags"]:
            data["tags"] = list(params["tags"])
        if params["datasets"]:
            data["datasets"] = list(params["datasets"])
        base = _as_list(params["base_model"])
        if base:
            data["base_model"] = base[0] if len(base) == 1 else base
        if params["pipeline_tag"] is not None:
            data["pipeline_tag"] = params["pipeline_tag"]
        if params["eval_results"]:
            data["model-index"] = _model_index(name, params["eval_results"])
        return data

    def _hub_tags(self, commit: _Commit) -> list[str]:
        """Tags as the Hub computes them: card tags plus library, dataset, license, region..."""
        card = commit.card_data
        tags: list[str] = []
        if commit.library_name:
            tags.append(commit.library_name)
        tags += _as_list(card.get("tags"))
        if commit.pipeline_tag:
            tags.append(commit.pipeline_tag)
        tags += [f"dataset:{d}" for d in _as_list(card.get("datasets"))]
        for base in _as_list(card.get("base_model")):
            tags += [f"base_model:{base}", f"base_model:finetune:{base}"]
        tags += _as_list(card.get("language"))
        if card.get("license"):
            tags.append(f"license:{card['license']}")
        if card.get("model-index"):
            tags.append("model-index")
        tags += ["endpoints_compatible", "region:us"]
        return list(dict.fromkeys(str(tag) for tag in tags))

    def _model_json(self, repo: _Repo, commit: _Commit, *, blobs: bool) -> JSON:
        author = repo.repo_id.split("/", 1)[0] if "/" in repo.repo_id else None
        siblings: list[JSON] = []
        for path in sorted(commit.files):
            sibling: JSON = {"rfilename": path}
            if blobs:
                sibling["blobId"] = _git_blob_sha(commit.files[path])
                sibling["size"] = len(commit.files[path])
            siblings.append(sibling)
        info: JSON = {
            "_id": _object_id(repo.repo_id),
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": author,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.settings["private"],
            "disabled": repo.settings["disabled"],
            "gated": repo.settings["gated"],
            "downloads": repo.settings["downloads"],
            "downloadsAllTime": repo.settings["downloads"],
            "likes": repo.settings["likes"],
            "trendingScore": 0,
            "tags": self._hub_tags(commit),
            "cardData": copy.deepcopy(commit.card_data),
            "siblings": siblings,
            "spaces": [],
            "childrenModelCount": 0,
            "usedStorage": sum(len(content) for content in commit.files.values()),
        }
        if commit.library_name is not None:
            info["library_name"] = commit.library_name
        if commit.pipeline_tag is not None:
            info["pipeline_tag"] = commit.pipeline_tag
        if commit.card_data.get("model-index"):
            info["model-index"] = copy.deepcopy(commit.card_data["model-index"])
        if "config.json" in commit.files:
            with contextlib.suppress(ValueError):
                info["config"] = json.loads(commit.files["config.json"])
        auto_class = _AUTO_CLASSES.get(commit.pipeline_tag or "")
        if commit.library_name == "transformers" and auto_class is not None:
            info["transformersInfo"] = {
                "auto_model": auto_class,
                "pipeline_tag": commit.pipeline_tag,
                "processor": "AutoTokenizer",
            }
        return info

    # ------------------------------------------------------------------ endpoint internals

    def _endpoint_by_name(self, name: str) -> _Endpoint | None:
        for endpoint in self._endpoints.values():
            if endpoint.name == name:
                return endpoint
        return None

    def _plan(self, name: str) -> _Plan:
        return self._plans.get(name, self._default_plan)

    def _set_state(self, endpoint: _Endpoint, state: str, message: str | None = None) -> None:
        status: JSON = endpoint.raw["status"]
        status["state"] = state
        status["message"] = message or _STATE_MESSAGES.get(state, state)
        status["updatedAt"] = _now()
        scaling = endpoint.raw["compute"].get("scaling", {})
        target = max(int(scaling.get("minReplica") or 0), 1)
        status["targetReplica"] = 0 if state in {"paused", "scaledToZero"} else target
        status["readyReplica"] = target if state == "running" else 0
        if state in {"running", "scaledToZero"}:
            status["url"] = f"{self._url}/inference/{endpoint.name}"
        else:
            status.pop("url", None)

    def _deploy(self, endpoint: _Endpoint, kind: Literal["create", "update", "resume"]) -> None:
        """Start a transition towards the planned outcome, one state per GET."""
        plan = self._plan(endpoint.name)
        if plan.outcome == "running":
            final = "running"
        else:
            final = "updateFailed" if kind == "update" else "failed"
        final_message = plan.message or _STATE_MESSAGES[final]
        if plan.steps_to_running == 0:
            endpoint.queue = []
            self._set_state(endpoint, final, final_message)
            return
        first = {"create": "pending", "update": "updating", "resume": "initializing"}[kind]
        between = "updating" if kind == "update" else "initializing"
        self._set_state(endpoint, first)
        endpoint.queue = [(between, _STATE_MESSAGES[between])] * (plan.steps_to_running - 1)
        endpoint.queue.append((final, final_message))

    def _check_model_ref(self, model: Mapping[str, Any]) -> str | JSONResponse:
        """Resolve ``model.repository``/``model.revision`` to a sha, or a 400."""
        repository = model.get("repository")
        repo = self._repos.get(str(repository))
        if repo is None:
            return _endpoint_error(400, f"Model repository '{repository}' not found on the Hub")
        revision = model.get("revision")
        commit = repo.resolve(None if revision is None else str(revision))
        if commit is None:
            return _endpoint_error(400, f"Revision '{revision}' not found in '{repository}'")
        return commit.sha

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: Request) -> Response:
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        body = await request.body()
        with self._lock:
            self._requests.append((request.method, unquote(path)))
            injected = self._take_failure(path)
            if injected is not None:
                return injected
            return self._route(request, path, body)

    def _take_failure(self, path: str) -> Response | None:
        decoded = unquote(path)
        for failure in self._failures:
            if failure.path_prefix is None or decoded.startswith(failure.path_prefix):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return JSONResponse({"error": failure.message}, status_code=failure.status)
        return None

    def _auth(self, request: Request) -> Literal["anonymous", "valid", "invalid"]:
        header = request.headers.get("authorization")
        if not header:
            return "anonymous"
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip() == self.token:
            return "valid"
        return "invalid"

    def _route(self, request: Request, path: str, body: bytes) -> Response:
        method = request.method
        if path == "/api/whoami-v2" and method in {"GET", "HEAD"}:
            return self._whoami(request)
        if path.startswith("/api/models/") and method in {"GET", "HEAD"}:
            return self._model_info(request, path.removeprefix("/api/models/"))
        if path.startswith(f"{ENDPOINTS_PREFIX}/endpoint/"):
            parts = [unquote(p) for p in path.removeprefix(f"{ENDPOINTS_PREFIX}/").split("/")]
            return self._endpoints_api(request, parts[1:], body)
        if path.startswith("/inference/"):
            parts = [unquote(p) for p in path.removeprefix("/inference/").split("/")]
            return self._inference(request, parts[0], body)
        resolve = re.match(r"^/([^/]+(?:/[^/]+)?)/resolve/([^/]+)/(.+)$", path)
        if resolve is not None and method in {"GET", "HEAD"}:
            repo_id, revision, filename = (unquote(g) for g in resolve.groups())
            return self._resolve(request, repo_id, revision, filename)
        return _error(404, "Sorry, we can't find the page you are looking for.")

    def _whoami(self, request: Request) -> Response:
        if self._auth(request) != "valid":
            return _error(401, _INVALID_CREDENTIALS)
        return JSONResponse(
            {
                "type": "user",
                "id": _object_id(f"user:{self.user}"),
                "name": self.user,
                "fullname": "ModelLedger Test",
                "email": f"{self.user}@example.com",
                "emailVerified": True,
                "canPay": True,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "/avatars/modelledger-test.svg",
                "orgs": [
                    {
                        "type": "org",
                        "id": _object_id(f"org:{org}"),
                        "name": org,
                        "fullname": org,
                        "canPay": True,
                        "roleInOrg": "admin",
                    }
                    for org in self.orgs
                ],
                "auth": {
                    "type": "access_token",
                    "accessToken": {
                        "displayName": "modelledger-tests",
                        "role": "write",
                        "createdAt": "2024-01-01T00:00:00.000Z",
                    },
                },
            }
        )

    def _gate(self, request: Request, repo_id: str) -> _Repo | Response:
        """Access checks shared by model_info and resolve (gating is checked by the caller)."""
        auth = self._auth(request)
        if auth == "invalid":
            return _error(401, _INVALID_CREDENTIALS)
        repo = self._repos.get(repo_id)
        if repo is None:
            return _error(404, _REPO_NOT_FOUND, code="RepoNotFound")
        if repo.settings["private"] and auth != "valid":
            return _error(401, _REPO_NOT_FOUND, code="RepoNotFound")
        if repo.settings["disabled"]:
            return _error(403, _DISABLED)
        return repo

    def _model_info(self, request: Request, rest: str) -> Response:
        parts = rest.split("/")
        revision: str | None = None
        if len(parts) >= 3 and parts[-2] == "revision":
            revision = unquote(parts[-1])
            parts = parts[:-2]
        repo_id = unquote("/".join(parts))
        gate = self._gate(request, repo_id)
        if isinstance(gate, Response):
            return gate
        commit = gate.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        params = request.query_params
        expand = params.getlist("expand") + params.getlist("expand[]")
        invalid = [value for value in expand if value not in _EXPANDABLE]
        if invalid:
            return _error(400, f'"expand" must be one of {sorted(_EXPANDABLE)}, got {invalid}')
        blobs = params.get("blobs", "").lower() in {"1", "true"}
        info = self._model_json(gate, commit, blobs=blobs)
        if params.get("securityStatus", "").lower() in {"1", "true"}:
            info["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
        if expand:
            info["evalResults"] = []
            info = {k: v for k, v in info.items() if k in {"_id", "id", *expand}}
        return JSONResponse(info)

    def _resolve(self, request: Request, repo_id: str, revision: str, filename: str) -> Response:
        gate = self._gate(request, repo_id)
        if isinstance(gate, Response):
            return gate
        commit = gate.resolve(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        if gate.settings["gated"]:
            if self._auth(request) != "valid":
                return _error(
                    401,
                    f"Access to model {repo_id} is restricted. You must have access to it and"
                    " be authenticated to access it. Please log in.",
                    code="GatedRepo",
                )
            if not gate.access_granted:
                return _error(
                    403,
                    f"Access to model {repo_id} is restricted and you are not in the authorized"
                    f" list. Visit https://huggingface.co/{repo_id} to ask for access.",
                    code="GatedRepo",
                )
        content = commit.files.get(filename)
        if content is None:
            response = _error(404, "Entry not found", code="EntryNotFound")
            response.headers["X-Repo-Commit"] = commit.sha
            return response
        media_type = "application/json" if filename.endswith(".json") else "text/plain"
        return Response(
            content,
            media_type=media_type,
            headers={
                "ETag": f'"{_git_blob_sha(content)}"',
                "X-Repo-Commit": commit.sha,
                "Accept-Ranges": "bytes",
                "Cache-Control": "no-cache",
            },
        )

    def _endpoints_api(self, request: Request, parts: list[str], body: bytes) -> Response:
        if self._auth(request) != "valid":
            return _endpoint_error(401, "Unauthorized: invalid or missing token")
        method = request.method
        namespace = parts[0]
        if len(parts) == 1 and method == "GET":
            items = [
                copy.deepcopy(ep.raw) for (ns, _), ep in self._endpoints.items() if ns == namespace
            ]
            return JSONResponse({"items": items})
        if len(parts) == 1 and method == "POST":
            return self._create_endpoint(namespace, body)
        if len(parts) < 2:
            return _endpoint_error(405, "Method Not Allowed")
        endpoint = self._endpoints.get((namespace, parts[1]))
        if endpoint is None:
            return _endpoint_error(404, f"Endpoint '{parts[1]}' not found in '{namespace}'")
        if len(parts) == 2 and method == "GET":
            if endpoint.queue:
                state, message = endpoint.queue.pop(0)
                self._set_state(endpoint, state, message)
            return JSONResponse(copy.deepcopy(endpoint.raw))
        if len(parts) == 2 and method == "PUT":
            return self._update_endpoint(endpoint, body)
        if len(parts) == 2 and method == "DELETE":
            del self._endpoints[(namespace, parts[1])]
            return JSONResponse({})
        if len(parts) == 3 and method == "POST":
            return self._endpoint_action(endpoint, parts[2])
        return _endpoint_error(405, "Method Not Allowed")

    def _create_endpoint(self, namespace: str, body: bytes) -> Response:
        if self._create_rejections:
            status, message = self._create_rejections.pop(0)
            return _endpoint_error(status, message)
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _endpoint_error(400, "Invalid JSON body")
        if not isinstance(payload, dict):
            return _endpoint_error(400, "Invalid JSON body")
        name = payload.get("name")
        if not isinstance(name, str) or _ENDPOINT_NAME.match(name) is None:
            return _endpoint_error(
                400,
                f"Invalid endpoint name {name!r}: 1-32 lowercase letters, digits and dashes",
            )
        model = payload.get("model") or {}
        compute = payload.get("compute") or {}
        provider = payload.get("provider") or {}
        missing = [
            f"{section}.{key}"
            for section, data, keys in (
                ("model", model, ("repository", "framework")),
                ("compute", compute, ("accelerator", "instanceSize", "instanceType")),
                ("provider", provider, ("vendor", "region")),
            )
            for key in keys
            if not data.get(key)
        ]
        if missing:
            return _endpoint_error(400, f"Missing required fields: {', '.join(missing)}")
        if payload.get("type") not in _ENDPOINT_TYPES:
            return _endpoint_error(400, f"Invalid endpoint type {payload.get('type')!r}")
        if (namespace, name) in self._endpoints:
            return _endpoint_error(
                409, f"Conflict: an endpoint named '{name}' already exists in '{namespace}'"
            )
        sha = self._check_model_ref(model)
        if isinstance(sha, Response):
            return sha
        repo = self._repos[str(model["repository"])]
        scaling = compute.get("scaling") or {}
        now = _now()
        user = {"id": _object_id(f"user:{self.user}"), "name": self.user}
        image = model.get("image") or {"huggingface": {}}
        variant: Any = next(iter(image.values()), None) if isinstance(image, dict) else None
        health_route = (variant if isinstance(variant, dict) else {}).get("healthRoute")
        health_route = health_route or "/health"
        raw: JSON = {
            "accountId": None,
            "name": name,
            "type": payload["type"],
            "provider": {"vendor": provider["vendor"], "region": provider["region"]},
            "compute": {
                "id": "-".join(
                    str(part)
                    for part in (
                        provider["vendor"],
                        provider["region"],
                        compute["accelerator"],
                        compute["instanceType"],
                        compute["instanceSize"],
                    )
                ),
                "accelerator": compute["accelerator"],
                "instanceType": compute["instanceType"],
                "instanceSize": compute["instanceSize"],
                "scaling": {
                    "minReplica": scaling.get("minReplica", 1),
                    "maxReplica": scaling.get("maxReplica", 1),
                    "scaleToZeroTimeout": scaling.get("scaleToZeroTimeout"),
                    "metric": "hardwareUsage",
                    "threshold": 80.0,
                },
            },
            "model": {
                **copy.deepcopy(model),
                "revision": sha,
                "task": model.get("task") or repo.head.pipeline_tag or "custom",
                "image": copy.deepcopy(image),
                "env": dict(model.get("env") or {}),
                "secrets": dict.fromkeys(model.get("secrets") or {}, "********"),
            },
            "status": {
                "createdAt": now,
                "createdBy": user,
                "updatedAt": now,
                "updatedBy": user,
                "private": None,
                "state": "pending",
                "message": _STATE_MESSAGES["pending"],
                "readyReplica": 0,
                "targetReplica": 1,
            },
            "healthRoute": health_route,
            "cacheHttpResponses": bool(payload.get("cacheHttpResponses", False)),
            "tags": list(payload.get("tags") or []),
        }
        for optional in ("route", "privateService"):
            if optional in payload:
                raw[optional] = copy.deepcopy(payload[optional])
        endpoint = _Endpoint(namespace=namespace, raw=raw)
        self._deploy(endpoint, "create")
        self._endpoints[(namespace, name)] = endpoint
        return JSONResponse(copy.deepcopy(raw))

    def _update_endpoint(self, endpoint: _Endpoint, body: bytes) -> Response:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _endpoint_error(400, "Invalid JSON body")
        if not isinstance(payload, dict) or not payload:
            return _endpoint_error(400, "Nothing to update")
        patch = copy.deepcopy(payload)
        patch.pop("name", None)
        model_patch = patch.get("model") or {}
        if "repository" in model_patch or "revision" in model_patch:
            target = {**endpoint.raw["model"], **model_patch}
            if "repository" in model_patch and "revision" not in model_patch:
                target["revision"] = None
            sha = self._check_model_ref(target)
            if isinstance(sha, Response):
                return sha
            model_patch["revision"] = sha
        if "secrets" in model_patch:
            model_patch["secrets"] = dict.fromkeys(model_patch["secrets"] or {}, "********")
        _merge(endpoint.raw, patch)
        endpoint.raw["status"]["updatedBy"] = {
            "id": _object_id(f"user:{self.user}"),
            "name": self.user,
        }
        if endpoint.state == "paused":
            endpoint.raw["status"]["updatedAt"] = _now()
        else:
            self._deploy(endpoint, "update")
        return JSONResponse(copy.deepcopy(endpoint.raw))

    def _endpoint_action(self, endpoint: _Endpoint, action: str) -> Response:
        state = endpoint.state
        if action == "pause":
            endpoint.queue = []
            self._set_state(endpoint, "paused")
        elif action == "resume":
            if state == "running":
                return _endpoint_error(400, f"Endpoint {endpoint.name} is already running")
            if state in {"paused", "failed", "updateFailed", "scaledToZero"}:
                self._deploy(endpoint, "resume")
        elif action == "scale-to-zero":
            if state != "running":
                return _endpoint_error(400, f"Endpoint {endpoint.name} is not running")
            self._set_state(endpoint, "scaledToZero")
        else:
            return _endpoint_error(404, f"Unknown action '{action}'")
        return JSONResponse(copy.deepcopy(endpoint.raw))

    def _inference(self, request: Request, name: str, body: bytes) -> Response:
        """The deployed model: GET = health check, POST = a canned prediction."""
        endpoint = self._endpoint_by_name(name)
        if endpoint is None:
            return _endpoint_error(404, f"No endpoint '{name}'")
        if endpoint.state != "running":
            return _endpoint_error(503, f"Endpoint '{name}' is {endpoint.state}")
        if request.method in {"GET", "HEAD"}:
            return JSONResponse({"status": "ok"})
        task = str(endpoint.raw["model"].get("task"))
        if task == "text-generation":
            return JSONResponse([{"generated_text": "fake generated text"}])
        if task in {"feature-extraction", "sentence-embeddings"}:
            return JSONResponse([[0.1, 0.2, 0.3]])
        return JSONResponse(
            [{"label": "POSITIVE", "score": 0.98}, {"label": "NEGATIVE", "score": 0.02}]
        )
