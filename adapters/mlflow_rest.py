"""A live MLflow model registry, read through MLflow's REST API (httpx; MLflow itself is
no dependency): the registered models, every model version, and the runs behind them.

Everything is read before the import writes anything, so MLflow going down half-way
leaves the store as it was. Pages are as large as MLflow allows, and runs are read in
batches through ``runs/search`` (one request per hundred runs rather than one each);
a run the search does not find is asked for alone, and is gone when MLflow says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from commands.ports import (
    MlflowModel,
    MlflowRun,
    MlflowVersion,
    ProviderRejected,
    ProviderUnavailable,
)

API = "/api/2.0/mlflow"
MODELS_PAGE = 1000  # MLflow's largest page of registered models
VERSIONS_PAGE = 10_000
RUN_BATCH = 100
RUN_READERS = 4
ATTEMPTS = 4  # a transient failure (a 5xx, a dropped connection) is retried with backoff


class MlflowServer:
    """The registry of the MLflow tracking server at ``url``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        basic: tuple[str, str] | None = None,  # MLflow's own auth: a user and password
        timeout_s: float = 30.0,
    ) -> None:
        self.where = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.where, headers=headers, auth=basic, timeout=timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def read(self, tick: Callable[[str, int], None]) -> list[MlflowModel]:
        found = list(self._pages("GET", "registered-models/search", "registered_models", tick))
        versions: dict[str, list[dict[str, Any]]] = {m["name"]: [] for m in found}
        for version in self._pages("GET", "model-versions/search", "model_versions", tick):
            versions.setdefault(version["name"], []).append(version)
        run_ids = {v["run_id"] for vs in versions.values() for v in vs if v.get("run_id")}
        runs = self._runs(sorted(run_ids), tick)
        return [_model(m, versions[m["name"]], runs) for m in found]

    def gone(self, names: list[str]) -> set[str]:
        missing = set()
        for name in names:
            try:
                self._call("GET", "registered-models/get", params={"name": name})
            except ProviderRejected as error:
                if "RESOURCE_DOES_NOT_EXIST" not in error.reason:
                    raise
                missing.add(name)
        return missing

    # -- requests ----------------------------------------------------------------

    def _pages(
        self, method: str, path: str, key: str, tick: Callable[[str, int], None]
    ) -> Iterator[dict[str, Any]]:
        what = "models" if key == "registered_models" else "versions"
        limit = MODELS_PAGE if what == "models" else VERSIONS_PAGE
        token: str | None = None
        while True:
            params: dict[str, Any] = {"max_results": limit}
            if token:
                params["page_token"] = token
            page = self._call(method, path, params=params)
            items = page.get(key, [])
            tick(what, len(items))
            yield from items
            token = page.get("next_page_token")
            if not token:
                return

    def _runs(self, run_ids: list[str], tick: Callable[[str, int], None]) -> dict[str, MlflowRun]:
        experiments = [e["experiment_id"] for e in self._experiments()]
        batches = [run_ids[i : i + RUN_BATCH] for i in range(0, len(run_ids), RUN_BATCH)]
        runs: dict[str, MlflowRun] = {}
        # A few batches at once: MLflow serves them on its workers while we wait.
        with ThreadPoolExecutor(RUN_READERS) as pool:
            for batch, found in zip(
                batches, pool.map(lambda b: self._batch(b, experiments), batches), strict=True
            ):
                runs.update(found)
                tick("runs", len(batch))
        return runs

    def _batch(self, batch: list[str], experiments: list[str]) -> dict[str, MlflowRun]:
        runs: dict[str, MlflowRun] = {}
        if experiments:
            quoted = ", ".join(f"'{run_id}'" for run_id in batch)
            body = {
                "experiment_ids": experiments,
                "filter": f"attributes.run_id IN ({quoted})",
                "run_view_type": "ALL",
                "max_results": RUN_BATCH,
            }
            for run in self._call("POST", "runs/search", json=body).get("runs", []):
                runs[run["info"]["run_id"]] = _run(run)
        for run_id in batch:
            if run_id not in runs and (alone := self._run_alone(run_id)) is not None:
                runs[run_id] = alone
        return runs

    def _experiments(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {"max_results": 1000, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            page = self._call("POST", "experiments/search", json=body)
            found.extend(page.get("experiments", []))
            token = page.get("next_page_token")
            if not token:
                return found

    def _run_alone(self, run_id: str) -> MlflowRun | None:
        try:
            return _run(self._call("GET", "runs/get", params={"run_id": run_id})["run"])
        except ProviderRejected as error:
            if "RESOURCE_DOES_NOT_EXIST" in error.reason:
                return None  # deleted for good (mlflow gc): the version has no run left
            raise

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{API}/{path}"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.InvalidURL as error:
                raise ProviderRejected(f"{self.where} is not a URL: {error}") from error
            except httpx.HTTPError as error:
                if attempt == ATTEMPTS:
                    reason = f"MLflow at {self.where} is not answering: {error}"
                    raise ProviderUnavailable(reason) from error
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return _answer(self.where, path, response)
                if attempt == ATTEMPTS:
                    raise ProviderUnavailable(
                        f"MLflow at {self.where} answered {response.status_code} to {path}"
                    )
            time.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _answer(where: str, path: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code in (401, 403):
        raise ProviderRejected(
            f"MLflow at {where} refused the credentials (check --token, or --username "
            "and --password)"
        )
    try:
        body = response.json()
    except ValueError:
        raise ProviderRejected(
            f"{where} answered {path} with something that is not MLflow's JSON: "
            "is this an MLflow tracking server's URL?"
        ) from None
    if response.status_code >= 400 or not isinstance(body, dict):
        code = body.get("error_code", response.status_code) if isinstance(body, dict) else ""
        message = body.get("message", "") if isinstance(body, dict) else ""
        raise ProviderRejected(f"MLflow at {where} answered {path}: {code} {message}".strip())
    return body


# -- MLflow's JSON in the port's terms ---------------------------------------------


def _model(
    found: dict[str, Any], versions: list[dict[str, Any]], runs: dict[str, MlflowRun]
) -> MlflowModel:
    ordered = sorted(versions, key=lambda v: int(v["version"]))
    return MlflowModel(
        name=found["name"],
        created_ms=int(found.get("creation_timestamp", 0)),
        updated_ms=int(found.get("last_updated_timestamp", found.get("creation_timestamp", 0))),
        description=found.get("description") or "",
        tags=_tags(found),
        aliases={a["alias"]: int(a["version"]) for a in found.get("aliases", [])},
        versions=tuple(_version(v, runs) for v in ordered),
    )


def _version(found: dict[str, Any], runs: dict[str, MlflowRun]) -> MlflowVersion:
    run_id = found.get("run_id") or ""
    created = int(found.get("creation_timestamp", 0))
    return MlflowVersion(
        version=int(found["version"]),
        created_ms=created,
        updated_ms=int(found.get("last_updated_timestamp", created)),
        description=found.get("description") or "",
        tags=_tags(found),
        source=found.get("source") or "",
        run_id=run_id,
        user_id=found.get("user_id") or "",
        stage=found.get("current_stage") or "None",
        status=found.get("status") or "READY",
        run=runs.get(run_id),
    )


def _run(found: dict[str, Any]) -> MlflowRun:
    info, data = found.get("info", {}), found.get("data", {})
    inputs = found.get("inputs", {}).get("dataset_inputs", [])
    return MlflowRun(
        run_id=info["run_id"],
        deleted=info.get("lifecycle_stage") == "deleted",
        metrics={m["key"]: _number(m.get("value")) for m in data.get("metrics", [])},
        params={p["key"]: str(p.get("value", "")) for p in data.get("params", [])},
        dataset=inputs[0].get("dataset", {}).get("name") if inputs else None,
        user_id=info.get("user_id") or "",
    )


def _tags(found: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: str(t.get("value", "")) for t in found.get("tags", [])}


def _number(value: Any) -> float:
    """A metric as MLflow's JSON writes it: a number, or "NaN" / "Infinity" as text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
