"""A local stand-in for the OpenAI fine-tuning API: tests drive the real ``openai`` SDK offline.

It speaks the part of the REST API that ``openai`` 3.57.0 uses for fine-tuning, with responses
that parse into the SDK's own types (``FileObject``, ``FineTuningJob``, ``FineTuningJobEvent``,
``SyncCursorPage``) and errors in the API's shape, ``{"error": {message, type, param, code}}``,
so the SDK raises its own exception classes::

    POST /v1/files                            multipart: file, purpose     -> file
    POST /v1/fine_tuning/jobs                 JSON body                    -> fine_tuning.job
    GET  /v1/fine_tuning/jobs                 ?after&limit&metadata[k]=v   -> list (newest first)
    GET  /v1/fine_tuning/jobs/{id}            advances the job one step    -> fine_tuning.job
    GET  /v1/fine_tuning/jobs/{id}/events     ?after&limit                 -> list (newest first)
    POST /v1/fine_tuning/jobs/{id}/cancel                                  -> fine_tuning.job

Use it as a context manager and point the SDK at ``base_url``::

    with FakeOpenAI() as fake:
        client = OpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
        fake.plan_next_job(steps=2, outcome="failed")
        ...

A job moves one step per ``retrieve`` (nothing else moves it)::

    validating_files -> queued -> running (one metrics event per step, ``steps`` times) -> outcome

The server is uvicorn in a daemon thread; the state is guarded by one lock, so tests may read
it (the properties return copies) and turn the knobs while the code under test is calling.
"""

from __future__ import annotations

import copy
import json
import math
import re
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value
from types import TracebackType
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.support.local_server import LocalServer, serve_in_thread

JSON = dict[str, Any]
Outcome = Literal["succeeded", "failed", "cancelled"]

ORGANIZATION = "modelledger-test"
ORGANIZATION_ID = "org-modelledger-test"
FILE_PURPOSES = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
)  # what POST /files accepts (the API's own outputs, e.g. fine-tune-results, are not uploadable)
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
DEFAULT_FINAL_METRICS: Mapping[str, float] = {
    "train_loss": 0.12,
    "train_mean_token_accuracy": 0.91,
    "valid_loss": 0.15,
    "full_valid_mean_token_accuracy": 0.89,
}
DEFAULT_FAILURE: Mapping[str, str | None] = {
    "code": "invalid_training_file",
    "message": "The job failed due to an invalid training file.",
    "param": "training_file",
}
# What "auto" resolves to once a job is created (the real API resolves it when validating).
AUTO_HYPERPARAMETERS: Mapping[str, int | float] = {
    "n_epochs": 3,
    "batch_size": 1,
    "learning_rate_multiplier": 2.0,
    "beta": 0.1,
}
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_ALPHANUMERIC = string.ascii_letters + string.digits


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _now() -> int:
    return int(time.time())


def default_error_type(status: int, code: str | None) -> str:
    """The ``type`` the real API puts on an error of this status (and code)."""
    if status == 429:
        return "insufficient_quota" if code == "insufficient_quota" else "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


class ApiError(Exception):
    """An error answered in the API's shape; the SDK maps ``status`` to its exception class:
    400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
    409 ConflictError, 422 UnprocessableEntityError, 429 RateLimitError, >=500 InternalServerError.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or default_error_type(status, code)

    def response(self) -> JSONResponse:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        return JSONResponse(body, status_code=self.status, headers=_request_id())


def _request_id() -> dict[str, str]:
    return {"x-request-id": _new_id("req_", 32)}


@dataclass(frozen=True)
class JobPlan:
    """How one job will run: ``steps`` running steps (one metrics event each), then ``outcome``.

    ``error`` is the job's ``error`` object when the outcome is "failed" (``DEFAULT_FAILURE``
    when not given); ``final_metrics`` overrides ``DEFAULT_FINAL_METRICS``, the values of the
    last metrics event (earlier steps have higher losses and lower accuracies).
    """

    steps: int = 3
    outcome: Outcome = "succeeded"
    error: Mapping[str, str | None] | None = None
    final_metrics: Mapping[str, float] = field(default_factory=dict)

    def metrics(self, step: int) -> JSON:
        """The ``data`` of the metrics event of ``step`` (1-based)."""
        final = {**DEFAULT_FINAL_METRICS, **self.final_metrics}
        behind = self.steps - step  # 0 at the last step
        valid_loss = final["valid_loss"] + 0.25 * behind
        valid_accuracy = max(0.0, final["full_valid_mean_token_accuracy"] - 0.05 * behind)
        return {
            "step": step,
            "total_steps": self.steps,
            "train_loss": round(final["train_loss"] + 0.3 * behind, 4),
            "train_mean_token_accuracy": round(
                max(0.0, final["train_mean_token_accuracy"] - 0.06 * behind), 4
            ),
            "valid_loss": round(valid_loss, 4),
            "valid_mean_token_accuracy": round(valid_accuracy, 4),
            "full_valid_loss": round(final.get("full_valid_loss", valid_loss), 4),
            "full_valid_mean_token_accuracy": round(valid_accuracy, 4),
        }


@dataclass
class _Job:
    body: JSON  # the fine_tuning.job as served; replaced on change (copy on write), never edited
    plan: JobPlan
    training_bytes: int
    events: list[JSON] = field(default_factory=list)  # oldest first
    steps_done: int = 0


class FakeOpenAI:
    """The fake API server; see the module docstring. All knobs are thread-safe.

    Attributes and properties a test reads:
      ``base_url``       ``http://127.0.0.1:<port>/v1`` (valid after ``start()``)
      ``api_key``        the only key accepted (``Authorization: Bearer <api_key>``)
      ``files``          id -> {"filename", "bytes", "purpose", "content"} (a copy)
      ``jobs``           id -> the fine_tuning.job object as last served (a deep copy)
      ``requests``       every request received, as (method, path), e.g. ("GET", "/v1/files")
      ``jobs_created``   how many jobs POST /fine_tuning/jobs created
      ``files_created``  how many files POST /files stored
    """

    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._server: LocalServer | None = None
        self._port: int | None = None
        self._app = Starlette(
            routes=[
                Route("/v1/files", self._create_file, methods=["POST"]),
                Route("/v1/fine_tuning/jobs", self._create_job, methods=["POST"]),
                Route("/v1/fine_tuning/jobs", self._list_jobs, methods=["GET"]),
                Route("/v1/fine_tuning/jobs/{job_id}", self._retrieve_job, methods=["GET"]),
                Route("/v1/fine_tuning/jobs/{job_id}/events", self._list_events, methods=["GET"]),
                Route("/v1/fine_tuning/jobs/{job_id}/cancel", self._cancel_job, methods=["POST"]),
            ],
            exception_handlers={
                ApiError: self._api_error,
                HTTPException: self._invalid_url,
            },
        )
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "FakeOpenAI is not started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        """Serve in a daemon thread; returns once the port accepts connections.

        After ``stop()``, ``start()`` serves again on the same port with the same state, so a
        test can take the whole service away (connections refused: the SDK's
        APIConnectionError) and bring it back.
        """
        assert self._server is None, "FakeOpenAI is already running"
        self._server = serve_in_thread(self._asgi, "fake-openai", self._port or 0)
        self._port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving (the state is kept). Does nothing if not running."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every file, job and request, and every knob (for a shared server)."""
        with self._lock:
            self._files: dict[str, JSON] = {}
            self._jobs: dict[str, _Job] = {}  # in creation order
            self._requests: list[tuple[str, str]] = []
            self._jobs_created = 0
            self._files_created = 0
            self._plans: deque[JobPlan] = deque()
            self._create_rejections: deque[ApiError] = deque()
            self._lost_create_responses: deque[ApiError] = deque()
            self._failures_left = 0
            self._failure_status = 500
            self._paused = False
            self._hanging = False

    # -- what a test reads --------------------------------------------------------------------

    @property
    def files(self) -> dict[str, JSON]:
        with self._lock:
            records = dict(self._files)
        return {file_id: dict(record) for file_id, record in records.items()}

    @property
    def jobs(self) -> dict[str, JSON]:
        with self._lock:
            bodies = {job_id: job.body for job_id, job in self._jobs.items()}
        return copy.deepcopy(bodies)  # outside the lock: bodies are replaced, never changed

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    @property
    def jobs_created(self) -> int:
        with self._lock:
            return self._jobs_created

    @property
    def files_created(self) -> int:
        with self._lock:
            return self._files_created

    def jobs_for_run(self, run_id: str) -> list[JSON]:
        """The jobs whose ``metadata["modelledger_run_id"]`` is ``run_id``, oldest first."""
        return [
            job
            for job in self.jobs.values()
            if (job.get("metadata") or {}).get("modelledger_run_id") == run_id
        ]

    # -- knobs --------------------------------------------------------------------------------

    def plan_next_job(
        self,
        steps: int = 3,
        outcome: Outcome = "succeeded",
        error: Mapping[str, str | None] | None = None,
        final_metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Queue the plan of the next job created (calls queue up, one per job).

        Jobs with no plan queued run the default: 3 running steps, then "succeeded", final
        metrics ``DEFAULT_FINAL_METRICS``. ``outcome`` "failed" sets the job's ``error`` to
        ``error`` (e.g. ``{"code": "invalid_training_file", "message": "...", "param":
        "training_file"}``; ``DEFAULT_FAILURE`` if None); "cancelled" ends it as if cancelled
        elsewhere. ``steps=0`` goes from "queued" straight to the outcome.
        """
        assert steps >= 0
        plan = JobPlan(steps, outcome, error, dict(final_metrics or {}))
        with self._lock:
            self._plans.append(plan)

    def hang_jobs(self, hang: bool = True) -> None:
        """While on, jobs go on to "running" but no further, and add no metrics: for timeouts.

        Turning it off lets them carry on from where they are.
        """
        with self._lock:
            self._hanging = hang

    def reject_next_create(
        self,
        status: int = 400,
        code: str | None = "invalid_request_error",
        message: str | None = None,
        *,
        type: str | None = None,
        param: str | None = None,
    ) -> None:
        """The next POST /fine_tuning/jobs answers this error and creates nothing (calls queue).

        ``type`` defaults to what the real API sends for the status: 429 with code
        "insufficient_quota" is the quota error (type "insufficient_quota", as the real API),
        other 429s are rate limits (type "requests"), 5xx "server_error", the rest
        "invalid_request_error". E.g. a bad base model:
        ``reject_next_create(400, "model_not_available", "Model x is not available ...",
        param="model")``.
        """
        if message is None:
            message = (
                QUOTA_MESSAGE
                if code == "insufficient_quota"
                else f"Fine-tuning job rejected ({code or status})."
            )
        with self._lock:
            self._create_rejections.append(
                ApiError(status, message, code=code, param=param, type=type)
            )

    def lose_next_create_response(self, status: int = 500) -> None:
        """The next POST /fine_tuning/jobs creates the job but answers a server error, as when
        the response is lost: the job exists (``jobs_for_run`` finds it) though the caller was
        told it failed.
        """
        with self._lock:
            self._lost_create_responses.append(ApiError(status, SERVER_ERROR_MESSAGE))

    def fail_next_requests(self, n: int, status: int = 500) -> None:
        """The next ``n`` requests, of any kind, answer ``status`` (a transient server error)
        before doing anything. Replaces an earlier count; ``n=0`` cancels it.
        """
        with self._lock:
            self._failures_left = n
            self._failure_status = status

    def pause(self) -> None:
        """Until ``resume()``, every request answers 503 (type "server_error"): the service is
        down but reachable, and the SDK raises InternalServerError. For a service that refuses
        connections instead (APIConnectionError), use ``stop()`` and ``start()``.
        """
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    # -- the gate in front of every route: record, faults, auth -------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._gate(scope)
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self._app(scope, receive, send)

    def _gate(self, scope: Scope) -> ApiError | None:
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        with self._lock:
            self._requests.append((scope["method"], scope["path"]))
            if self._paused:
                return ApiError(503, "The service is temporarily unavailable. Please retry.")
            if self._failures_left > 0:
                self._failures_left -= 1
                return ApiError(self._failure_status, SERVER_ERROR_MESSAGE)
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[7:].strip():
            return ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        key = authorization[7:].strip()
        if key != self.api_key:
            shown = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}"
            return ApiError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    async def _api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def _invalid_url(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"Invalid URL ({request.method} {request.url.path})"
        return ApiError(exc.status_code, message).response()

    # -- files --------------------------------------------------------------------------------

    async def _create_file(self, request: Request) -> Response:
        fields = _parse_multipart(request.headers.get("content-type", ""), await request.body())
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if "file" not in fields or fields["file"][0] is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in FILE_PURPOSES:
            raise ApiError(
                400,
                f"'{purpose}' is not one of {sorted(FILE_PURPOSES)} - 'purpose'",
                param="purpose",
            )
        filename, content = fields["file"]
        assert filename is not None
        if purpose == "fine-tune":
            _check_jsonl(filename, content)
        record: JSON = {
            "id": _new_id("file-", 22),
            "object": "file",
            "bytes": len(content),
            "created_at": _now(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }
        with self._lock:
            self._files[record["id"]] = {
                "filename": filename,
                "bytes": len(content),
                "purpose": purpose,
                "content": content,
                "created_at": record["created_at"],
            }
            self._files_created += 1
        return _json(record)

    # -- jobs ---------------------------------------------------------------------------------

    async def _create_job(self, request: Request) -> Response:
        params = await _json_body(request)
        with self._lock:
            if self._create_rejections:
                raise self._create_rejections.popleft()
            job = self._new_job(params)
            self._jobs[job.body["id"]] = job
            self._jobs_created += 1
            if self._lost_create_responses:
                raise self._lost_create_responses.popleft()
            return _json(job.body)

    def _new_job(self, params: JSON) -> _Job:
        """Validate a create request (as the API does) and make the job; holds the lock."""
        model = _required_string(params, "model")
        training_file = self._fine_tune_file(params.get("training_file"), "training_file")
        validation_file = params.get("validation_file")
        if validation_file is not None:
            validation_file = self._fine_tune_file(validation_file, "validation_file")
        suffix = params.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            raise ApiError(400, "suffix must be a string of at most 64 characters.", param="suffix")
        metadata = _check_metadata(params.get("metadata"))
        hyperparameters, method = _resolve_method(
            params.get("hyperparameters"), params.get("method")
        )
        seed = params.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ApiError(400, "seed must be an integer.", param="seed")
        job_id = _new_id("ftjob-")
        body: JSON = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": _now(),
            "model": model,
            "organization_id": ORGANIZATION_ID,
            "status": "validating_files",
            "training_file": training_file,
            "validation_file": validation_file,
            "hyperparameters": hyperparameters,
            "method": method,
            "metadata": metadata,
            "seed": seed if seed is not None else secrets.randbelow(2**31),
            "user_provided_suffix": suffix,
            "integrations": [],
            "result_files": [],
            "fine_tuned_model": None,
            "finished_at": None,
            "estimated_finish": None,
            "trained_tokens": None,
            "error": None,
        }
        plan = self._plans.popleft() if self._plans else JobPlan()
        job = _Job(body, plan, training_bytes=self._files[training_file]["bytes"])
        _add_event(job, f"Created fine-tuning job: {job_id}")
        _add_event(job, f"Validating training file: {training_file}")
        return job

    def _fine_tune_file(self, file_id: object, name: str) -> str:
        """``file_id`` if it names an uploaded file of purpose "fine-tune"; holds the lock."""
        if not isinstance(file_id, str) or not file_id:
            raise ApiError(
                400,
                f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
        record = self._files.get(file_id)
        if record is None:
            raise ApiError(400, f"invalid {name}: {file_id}", param=name)
        if record["purpose"] != "fine-tune":
            raise ApiError(
                400,
                f"File {file_id} has purpose '{record['purpose']}'; fine-tuning needs 'fine-tune'.",
                param=name,
                code="invalid_file_purpose",
            )
        return file_id

    async def _list_jobs(self, request: Request) -> Response:
        wanted: dict[str, str] = {}
        null_metadata = False
        for key, value in request.query_params.multi_items():
            if key == "metadata" and value == "null":
                null_metadata = True
            elif match := re.fullmatch(r"metadata\[(.+)\]", key):
                wanted[match.group(1)] = value
        with self._lock:
            jobs = [
                job.body
                for job in reversed(self._jobs.values())  # newest first, as the API
                if _metadata_matches(job.body["metadata"], wanted, null_metadata)
            ]
        return _page(jobs, request)

    async def _retrieve_job(self, request: Request) -> Response:
        with self._lock:
            job = self._job(request)
            job.body = dict(job.body)  # copy on write: a body once served is never changed
            self._advance(job)
            return _json(job.body)

    async def _list_events(self, request: Request) -> Response:
        with self._lock:
            events = self._job(request).events[::-1]  # newest first
        return _page(events, request)

    async def _cancel_job(self, request: Request) -> Response:
        with self._lock:
            job = self._job(request)
            if job.body["status"] in TERMINAL:
                raise ApiError(
                    400,
                    f"Job {job.body['id']} has already completed with status "
                    f"{job.body['status']!r} and cannot be cancelled.",
                    param="fine_tuning_job_id",
                )
            job.body = {**job.body, "status": "cancelled", "estimated_finish": None}
            _add_event(job, "Fine-tuning job cancelled")
            return _json(job.body)

    def _job(self, request: Request) -> _Job:
        job_id = request.path_params["job_id"]
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(
                404,
                f"Fine-tuning job {job_id} not found.",
                param="fine_tuning_job_id",
                code="fine_tuning_job_not_found",
            )
        return job

    # -- the job lifecycle --------------------------------------------------------------------

    def _advance(self, job: _Job) -> None:
        """One step: validating_files -> queued -> running x steps -> outcome; holds the lock."""
        body, plan = job.body, job.plan
        status = body["status"]
        if status in TERMINAL:
            return
        if status == "validating_files":
            body["status"] = "queued"
            _add_event(job, "Files validated, moving job to queued state")
            return
        if self._hanging:
            if status == "queued":
                self._start_running(job)
            return
        if job.steps_done < plan.steps:
            if status == "queued":
                self._start_running(job)
            job.steps_done += 1
            data = plan.metrics(job.steps_done)
            message = (
                f"Step {job.steps_done}/{plan.steps}: training loss={data['train_loss']:.2f}, "
                f"validation loss={data['valid_loss']:.2f}"
            )
            _add_event(job, message, type="metrics", data=data)
            return
        self._finish(job)

    def _start_running(self, job: _Job) -> None:
        job.body["status"] = "running"
        job.body["estimated_finish"] = _now() + 60 * max(1, job.plan.steps)
        _add_event(job, "Fine-tuning job started")

    def _finish(self, job: _Job) -> None:
        body, plan = job.body, job.plan
        body.update(status=plan.outcome, estimated_finish=None)
        if plan.outcome == "cancelled":
            _add_event(job, "Fine-tuning job cancelled")
            return
        body["finished_at"] = _now()
        if plan.outcome == "failed":
            error = dict(plan.error or DEFAULT_FAILURE)
            body["error"] = {
                "code": error.get("code") or "internal_error",
                "message": error.get("message") or "The job failed.",
                "param": error.get("param"),
            }
            _add_event(job, body["error"]["message"], level="error")
            return
        suffix = body["user_provided_suffix"] or "custom"
        body["fine_tuned_model"] = f"ft:{body['model']}:{ORGANIZATION}:{suffix}:{body['id'][-8:]}"
        epochs = body["hyperparameters"].get("n_epochs")
        body["trained_tokens"] = math.ceil(job.training_bytes / 4) * (
            epochs if isinstance(epochs, int) else 1
        )
        body["result_files"] = [self._store_results(job)]
        _add_event(job, f"New fine-tuned model created: {body['fine_tuned_model']}")
        _add_event(job, "The job has successfully completed")

    def _store_results(self, job: _Job) -> str:
        """The job's results file (purpose "fine-tune-results", a CSV of the metrics)."""
        columns = (
            "step",
            "train_loss",
            "train_accuracy",
            "valid_loss",
            "valid_mean_token_accuracy",
        )
        rows = [",".join(columns)]
        for step in range(1, job.plan.steps + 1):
            data = job.plan.metrics(step)
            data["train_accuracy"] = data["train_mean_token_accuracy"]
            rows.append(",".join(str(data[column]) for column in columns))
        content = ("\n".join(rows) + "\n").encode()
        file_id = _new_id("file-", 22)
        self._files[file_id] = {
            "filename": "step_metrics.csv",
            "bytes": len(content),
            "purpose": "fine-tune-results",
            "content": content,
            "created_at": _now(),
        }
        return file_id


# -- helpers: requests ------------------------------------------------------------------------


def _json(body: JSON) -> JSONResponse:
    return JSONResponse(body, headers=_request_id())


async def _json_body(request: Request) -> JSON:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
        )
    return body


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename or None, content) of a multipart/form-data body."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_boundary()
    if header.get_content_type() != "multipart/form-data" or not boundary:
        raise ApiError(400, "The request must be multipart/form-data.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = HeaderParser().parsestr(head.decode("utf-8"))
        name = headers.get_param("name", header="content-disposition")
        if name is None:
            continue
        filename = headers.get_filename()
        if filename is not None:  # httpx escapes these three as the WHATWG form encoding does
            for escaped, char in (("%22", '"'), ("%0D", "\r"), ("%0A", "\n")):
                filename = filename.replace(escaped, char)
        fields[collapse_rfc2231_value(name)] = (filename, content.removesuffix(b"\r\n"))
    return fields


def _check_jsonl(filename: str, content: bytes) -> None:
    """What the API checks of a fine-tune upload: a .jsonl file, each line a JSON object."""

    def invalid(message: str) -> ApiError:
        return ApiError(400, message, param="file", code="invalid_file_format")

    if not filename.endswith(".jsonl"):
        raise invalid(f"Invalid file format for Fine-Tuning API. Must be .jsonl (got {filename!r})")
    try:
        lines = content.decode("utf-8").split("\n")  # not splitlines(): JSON may hold U+2028
    except UnicodeDecodeError:
        raise invalid("Invalid file format for Fine-Tuning API. The file is not UTF-8.") from None
    examples = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except ValueError:
            example = None
        if not isinstance(example, dict):
            raise invalid(f"Invalid file format. Line {number} is not a JSON object.")
        examples += 1
    if examples == 0:
        raise invalid("Invalid file format. The file has no examples.")


def _required_string(params: JSON, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(
            400,
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )
    return value


def _check_metadata(metadata: object) -> dict[str, str] | None:
    """At most 16 pairs, keys of at most 64 characters, string values of at most 512."""
    if metadata is None:
        return None
    if (
        not isinstance(metadata, dict)
        or len(metadata) > 16
        or not all(
            isinstance(key, str) and len(key) <= 64 and isinstance(value, str) and len(value) <= 512
            for key, value in metadata.items()
        )
    ):
        raise ApiError(
            400,
            "metadata must be an object of at most 16 string pairs (keys up to 64 characters, "
            "values up to 512).",
            param="metadata",
            code="invalid_value",
        )
    return dict(metadata)


def _resolve_hyperparameters(given: object, param: str, method: str) -> JSON:
    """``given`` with "auto" (or absent) values resolved to the numbers the job will use."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ApiError(400, f"{param} must be an object.", param=param, code="invalid_value")
    names = ["batch_size", "learning_rate_multiplier", "n_epochs"]
    if method == "dpo":
        names.append("beta")
    resolved: JSON = dict(given)
    for name in names:
        value = given.get(name, "auto")
        whole = name in ("batch_size", "n_epochs")
        valid = value == "auto" or (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value > 0
            and (not whole or isinstance(value, int))
        )
        if not valid:
            raise ApiError(
                400,
                f"Invalid value for {param}.{name}: {value!r}.",
                param=f"{param}.{name}",
                code="invalid_value",
            )
        resolved[name] = AUTO_HYPERPARAMETERS[name] if value == "auto" else value
    return resolved


def _resolve_method(hyperparameters: object, method: object) -> tuple[JSON, JSON]:
    """The job's (``hyperparameters``, ``method``): the method's hyperparameters, else the
    deprecated top-level ones, with "auto" resolved; the top level echoes the common ones."""
    if method is None:
        method = {"type": "supervised"}
    kinds = ("supervised", "dpo", "reinforcement")
    if not isinstance(method, dict) or method.get("type") not in kinds:
        raise ApiError(
            400,
            "method.type must be one of 'supervised', 'dpo', 'reinforcement'.",
            param="method.type",
            code="invalid_value",
        )
    kind: str = method["type"]
    settings = method.get(kind) or {}
    if not isinstance(settings, dict):
        raise ApiError(400, f"method.{kind} must be an object.", param=f"method.{kind}")
    if "hyperparameters" in settings:
        resolved = _resolve_hyperparameters(
            settings["hyperparameters"], f"method.{kind}.hyperparameters", kind
        )
    else:
        resolved = _resolve_hyperparameters(hyperparameters, "hyperparameters", kind)
    common = {
        name: resolved[name] for name in ("batch_size", "learning_rate_multiplier", "n_epochs")
    }
    return common, {"type": kind, kind: {**settings, "hyperparameters": resolved}}


def _metadata_matches(metadata: dict[str, str] | None, wanted: dict[str, str], null: bool) -> bool:
    if null:
        return not metadata
    return all((metadata or {}).get(key) == value for key, value in wanted.items())


def _page(items: list[JSON], request: Request) -> JSONResponse:
    """A cursor page (``SyncCursorPage``) of ``items``: those after the ``after`` id, at most
    ``limit`` (default 20). An ``after`` that is not in ``items`` gives an empty page."""
    raw_limit = request.query_params.get("limit", "20")
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise ApiError(400, f"Invalid limit: {raw_limit!r}.", param="limit", code="invalid_value")
    limit = int(raw_limit)
    after = request.query_params.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return _json({"object": "list", "data": items[:limit], "has_more": len(items) > limit})


def _add_event(
    job: _Job,
    message: str,
    *,
    level: Literal["info", "warn", "error"] = "info",
    type: Literal["message", "metrics"] = "message",
    data: JSON | None = None,
) -> None:
    job.events.append(
        {
            "id": _new_id("ftevent-"),
            "object": "fine_tuning.job.event",
            "created_at": _now(),
            "level": level,
            "message": message,
            "type": type,
            "data": data if data is not None else {},
        }
    )
