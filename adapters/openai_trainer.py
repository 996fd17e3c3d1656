"""The OpenAI trainer: a training run as an OpenAI fine-tuning job, through the openai SDK.

The job carries the run's id in its metadata, so a worker that restarts after
creating the job but before recording it finds that job instead of paying for a
second one. The SDK's own retries are off: the worker retries with its backoff,
and only calls that are safe to repeat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
from openai import OpenAI

from commands.ports import JobProgress, ProviderRejected, ProviderUnavailable, TrainingJob

RUN_KEY = "modelledger_run_id"
RUNNING = {"validating_files", "queued", "running"}


class OpenAITrainer:
    name = "openai"

    def __init__(
        self,
        api_key: str,
        datasets_dir: Path,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.client = OpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_seconds
        )
        self.datasets_dir = datasets_dir

    def submit(self, job: TrainingJob) -> str:
        with provider_errors():
            for found in self.client.fine_tuning.jobs.list(metadata={RUN_KEY: job.run_id}):
                return found.id  # created before a restart: follow it, don't start another
            created = self.client.fine_tuning.jobs.create(
                model=job.base_model,
                training_file=self._training_file(job.dataset),
                suffix=suffix(job.model_name),
                metadata={RUN_KEY: job.run_id},
                **_method(job.hyperparameters),
            )
        return created.id

    def progress(self, job_id: str) -> JobProgress:
        with provider_errors():
            job = self.client.fine_tuning.jobs.retrieve(job_id)
            if job.status in RUNNING:
                return JobProgress("running", detail=job.status)
            if job.status == "cancelled":
                return JobProgress("failed", reason="the fine-tuning job was cancelled at OpenAI")
            if job.status == "failed":
                return JobProgress("failed", reason=_failure(job.error))
            metrics = self._final_metrics(job_id)
        if job.trained_tokens is not None:
            metrics["trained_tokens"] = float(job.trained_tokens)
        return JobProgress(
            "succeeded",
            metrics=metrics,
            output_model=job.fine_tuned_model,
            artifact_uri=f"openai://files/{job.result_files[0]}" if job.result_files else None,
        )

    def cancel(self, job_id: str) -> None:
        with provider_errors():
            self.client.fine_tuning.jobs.cancel(job_id)

    def _final_metrics(self, job_id: str) -> dict[str, float]:
        """The last step's metrics, as the job's newest "metrics" event reports them."""
        for event in self.client.fine_tuning.jobs.list_events(job_id, limit=100):
            if event.type == "metrics" and isinstance(event.data, dict):
                return {
                    name: float(value)
                    for name, value in event.data.items()
                    if name != "step"
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                }
        return {}

    def _training_file(self, dataset: str) -> str:
        """An uploaded file's id as it is; otherwise a file in the datasets directory."""
        if re.fullmatch(r"file-[A-Za-z0-9_-]+", dataset):
            return dataset
        root = self.datasets_dir.resolve()
        path = (root / dataset).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ProviderRejected(
                f"dataset {dataset!r} is neither an OpenAI file id nor a file in the "
                f"datasets directory"
            )
        uploaded = self.client.files.create(
            file=(path.name, path.read_bytes()), purpose="fine-tune"
        )
        return uploaded.id


def suffix(model_name: str) -> str:
    """OpenAI allows up to 64 characters of letters, digits, '-' and '_' here."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", model_name).strip("-")[:64] or "modelledger"


def _method(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    if not hyperparameters:
        return {}
    return {"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}}


def _failure(error: Any) -> str:
    if error is None:
        return "the fine-tuning job failed at OpenAI without a reason"
    code = f" ({error.code})" if getattr(error, "code", None) else ""
    return f"{error.message}{code}"


@contextmanager
def provider_errors() -> Iterator[None]:
    """The SDK's errors -> the port's: retry what can succeed later, end the rest."""
    try:
        yield
    except (openai.APIConnectionError, openai.APITimeoutError) as error:
        raise ProviderUnavailable(f"OpenAI unreachable: {error}") from error
    except openai.RateLimitError as error:
        if _code(error) == "insufficient_quota":
            raise ProviderRejected(f"OpenAI quota exceeded: {_message(error)}") from error
        raise ProviderUnavailable(f"OpenAI rate limit: {_message(error)}") from error
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        # Our key, not the run: retried until an operator fixes it (or the run times out).
        # OpenAI's message quotes part of the key, so it is not passed on.
        raise ProviderUnavailable(
            f"OpenAI refused the API key ({error.status_code}); check OPENAI_API_KEY"
        ) from error
    except openai.APIStatusError as error:
        if error.status_code >= 500 or error.status_code in (408, 409):
            raise ProviderUnavailable(
                f"OpenAI answered {error.status_code}: {_message(error)}"
            ) from error
        raise ProviderRejected(
            f"OpenAI refused ({error.status_code}): {_message(error)}"
        ) from error


def _code(error: openai.APIStatusError) -> str | None:
    body = error.body if isinstance(error.body, dict) else {}
    code = body.get("code") or body.get("type")
    return str(code) if code else None


def _message(error: openai.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    return str(body.get("message") or error.message)
