"""The catalogue projection: one row per model for reads and search, each model's
metric extremes for leaderboards, and counters for statistics (kept as deltas:
projections/statistics.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, bindparam, delete

from projections.base import (
    Projection,
    delete_in,
    event_time,
    insert_rows,
    new_models,
    select_in,
)
from projections.metric_definitions import CurrentDefinitions, DefinitionEvent
from projections.metric_values import extremes, record_metric
from projections.statistics import Contribution, contribution, write_counts, write_metric_stats
from read_model.tables import (
    CATALOGUE_VERSION,
    CatalogueTables,
    catalogue_tables,
    fts5_statements,
)
from write_model.deployments import Deployment, serving
from write_model.metric_definition import DEFINITION_EVENT_TYPES
from write_model.model import EVENT_TYPES, AIModel
from write_model.values import ModelStatus

Group = tuple[str, str]  # (project, task), either may be ALL
CountKey = tuple[str, str, str, str]  # project, task, dimension, key


class CatalogueProjection(Projection):
    name = "catalogue"
    version = CATALOGUE_VERSION
    topics = (*EVENT_TYPES, *DEFINITION_EVENT_TYPES)

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.t: CatalogueTables = catalogue_tables(generation, self.dialect)
        self.rows: dict[str, dict[str, Any]] = {}
        self.stored: set[str] = set()
        self.metrics: dict[str, dict[str, dict[str, Any]]] = {}
        self.stored_metrics: set[tuple[str, str]] = set()
        self.before: dict[str, Contribution] = {}
        self.tags_before: dict[str, set[str]] = {}
        self.metrics_changed: set[str] = set()  # models whose metric rows need writing
        self.keys: dict[UUID, str] = {}
        self.definitions = CurrentDefinitions()

    # -- tables -------------------------------------------------------------

    @classmethod
    def create_tables(cls, conn: Connection, generation: int) -> None:
        t = catalogue_tables(generation, conn.dialect.name)
        t.metadata.create_all(conn)
        if conn.dialect.name == "sqlite":
            for statement in fts5_statements(t.models.name, t.fts_name):
                conn.exec_driver_sql(statement)

    @classmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None:
        t = catalogue_tables(generation, conn.dialect.name)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t.fts_name}")
        t.metadata.drop_all(conn)

    @classmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        t = catalogue_tables(generation, dialect)
        return [
            *(t.models.name, t.tags.name, t.metrics.name, t.counts.name, t.metric_stats.name),
            t.definitions.name,
        ]

    # -- batch --------------------------------------------------------------

    def prepare(self, events: Sequence[tuple[int, AIModel.Event]]) -> None:
        # (a metric definition's event touches no model)
        ids = {self.key(event) for _, event in events if isinstance(event, AIModel.Event)}
        for model_id, (model, metrics) in self.taken(ids).items():
            self.rows[model_id] = model
            self.metrics[model_id] = metrics
            self.stored_metrics.update((model_id, name) for name in metrics)
        read = ids - self.rows.keys() - new_models(events)
        for row in select_in(self.conn, self.t.models, "id", read):
            model = dict(row._mapping)
            model.pop("search", None)  # computed by PostgreSQL
            self.rows[model["id"]] = model
        for row in select_in(self.conn, self.t.metrics, "model_id", read & self.rows.keys()):
            metric = dict(row._mapping)
            self.metrics.setdefault(metric["model_id"], {})[metric["metric"]] = metric
            self.stored_metrics.add((metric["model_id"], metric["metric"]))
        self.stored.update(self.rows)
        for model_id, model in self.rows.items():
            self.tags_before[model_id] = set(model["tags"])
            before = {name: dict(m) for name, m in self.metrics.get(model_id, {}).items()}
            self.before[model_id] = contribution(model, before)

    def keep(self) -> dict[str, Any]:
        """Each row as written, with its metrics (as the tables now hold them)."""
        return {i: (row, self.metrics.get(i, {})) for i, row in self.rows.items()}

    def key(self, event: AIModel.Event) -> str:
        """The model's id as the tables hold it (formatting a UUID is not free)."""
        text = self.keys.get(event.originator_id)
        if text is None:
            text = self.keys[event.originator_id] = str(event.originator_id)
        return text

    def _touch(self, event: AIModel.Event, position: int) -> dict[str, Any]:
        row = self.rows[self.key(event)]
        row["version"] = event.originator_version
        row["updated_at"] = event_time(event)  # handlers reuse it as the event's time
        row["position"] = position
        return row

    @staticmethod
    def _refresh_status(row: dict[str, Any]) -> None:
        runs = row["training_runs"]
        last = runs.get(row["last_finished_run"] or "")
        row["status"] = ModelStatus.derive(
            archived=row["archived"],
            deployed=bool(row["deployments"]),
            training=any(run["state"] == "running" for run in runs.values()),
            last_run_failed=last is not None and last["state"] == "failed",
            trained=bool(row["versions"]),
        ).value

    # -- events -------------------------------------------------------------

    @singledispatchmethod
    def process_event(self, event: AIModel.Event, position: int) -> None:
        """Every event type is registered below; an unknown one changes nothing."""

    @process_event.register
    def created(self, event: AIModel.ModelCreated, position: int) -> None:
        when = event_time(event)
        self.rows[self.key(event)] = {
            "id": self.key(event),
            "row_number": position,
            "name": event.name,
            "project": event.project,
            "description": event.description,
            "task": event.task,
            "framework": event.framework,
            "tags": list(event.tags),
            "tags_text": " ".join(event.tags),
            "configuration": dict(event.configuration),
            "owner": event.owner,
            "created_by": event.actor,
            "status": ModelStatus.CREATED.value,
            "archived": False,
            "latest_version": 0,
            "training_runs": {},
            "last_finished_run": None,
            "versions": [],
            "metric_extremes": {},
            "deployments": {},
            "pending_deployments": {},
            "created_at": when,
            "updated_at": when,
            "version": event.originator_version,
            "position": position,
        }

    @process_event.register
    def updated(self, event: AIModel.ModelUpdated, position: int) -> None:
        row = self._touch(event, position)
        for key, value in event.changes.items():
            row[key] = value
        row["tags_text"] = " ".join(row["tags"])
        if "task" in event.changes:
            self.metrics_changed.add(row["id"])

    @process_event.register
    def training_started(self, event: AIModel.TrainingStarted, position: int) -> None:
        row = self._touch(event, position)
        run = {
            "run_id": event.run_id,
            "dataset": event.dataset,
            "hyperparameters": dict(event.hyperparameters),
            "backend": event.backend,
            "started_at": row["updated_at"],
            "state": "running",
            "model_version": None,
            "failure_reason": None,
            "base_model": event.base_model,
            "job_id": None,
        }
        row["training_runs"][event.run_id] = run  # the row is this batch's own copy

    @process_event.register
    def job_submitted(self, event: AIModel.TrainingJobSubmitted, position: int) -> None:
        row = self._touch(event, position)
        row["training_runs"][event.run_id]["job_id"] = event.job_id

    @process_event.register
    def trained(self, event: AIModel.ModelTrained, position: int) -> None:
        row = self._touch(event, position)
        self._finish_run(row, event.run_id, state="completed", model_version=event.model_version)
        row["latest_version"] = event.model_version
        version = {
            "number": event.model_version,
            "run_id": event.run_id,
            "metrics": dict(event.metrics),
            "artifact_uri": event.artifact_uri,
            "created_at": row["updated_at"],
            "output_model": event.output_model,
            "source_version": event.source_version,
            "description": "",
            "tags": [],
        }
        row["versions"].append(version)
        metrics = self.metrics.setdefault(row["id"], {})
        self.metrics_changed.add(row["id"])
        for name, value in event.metrics.items():
            record_metric(metrics, row["id"], name, float(value), event.model_version)
        row["metric_extremes"] = {name: extremes(m) for name, m in sorted(metrics.items())}

    @process_event.register
    def version_updated(self, event: AIModel.VersionUpdated, position: int) -> None:
        row = self._touch(event, position)
        row["versions"][event.model_version - 1].update(event.changes)

    @process_event.register
    def training_failed(self, event: AIModel.TrainingFailed, position: int) -> None:
        row = self._touch(event, position)
        self._finish_run(row, event.run_id, state="failed", failure_reason=event.reason)

    @staticmethod
    def _finish_run(row: dict[str, Any], run_id: str, **outcome: Any) -> None:
        row["training_runs"][run_id].update(outcome)
        row["last_finished_run"] = run_id

    @process_event.register
    def deployment_requested(self, event: AIModel.DeploymentRequested, position: int) -> None:
        row = self._touch(event, position)
        request = {
            "request_id": event.request_id,
            "action": event.action,
            "target": event.target,
            "model_version": event.model_version,
            "requested_at": row["updated_at"],
        }
        row["pending_deployments"] = {**row["pending_deployments"], event.environment: request}

    @process_event.register
    def deployment_failed(self, event: AIModel.DeploymentFailed, position: int) -> None:
        self._close_request(self._touch(event, position), event.environment)

    @staticmethod
    def _close_request(row: dict[str, Any], environment: str) -> None:
        pending = row["pending_deployments"]
        row["pending_deployments"] = {env: r for env, r in pending.items() if env != environment}

    @process_event.register
    def deployed(self, event: AIModel.ModelDeployed, position: int) -> None:
        row = self._touch(event, position)
        now = serving(
            _deployment(row, event.environment),
            environment=event.environment,
            model_version=event.model_version,
            endpoint_url=event.endpoint_url,
            target=event.target,
            endpoint_name=event.endpoint_name,
            at=row["updated_at"],
        )
        self._serve(row, now)

    @process_event.register
    def rolled_back(self, event: AIModel.ModelRolledBack, position: int) -> None:
        row = self._touch(event, position)
        current = _deployment(row, event.environment)
        assert current is not None  # only what serves rolls back
        back = current.rolled_back(
            model_version=event.model_version, endpoint_url=event.endpoint_url, at=row["updated_at"]
        )
        self._serve(row, back)

    @process_event.register
    def undeployed(self, event: AIModel.ModelUndeployed, position: int) -> None:
        row = self._touch(event, position)
        row["deployments"] = {
            env: d for env, d in row["deployments"].items() if env != event.environment
        }
        self._close_request(row, event.environment)

    @process_event.register
    def archived(self, event: AIModel.ModelArchived, position: int) -> None:
        row = self._touch(event, position)
        row["archived"] = True
        self.metrics_changed.add(row["id"])

    def _serve(self, row: dict[str, Any], deployment: Deployment) -> None:
        """Deployed or rolled back (by the write model's rule): the environment serves this."""
        environment = deployment.environment
        row["deployments"] = dict(
            sorted({**row["deployments"], environment: asdict(deployment)}.items())
        )
        self._close_request(row, environment)

    # -- flush --------------------------------------------------------------

    @process_event.register
    def definition_changed(self, event: DefinitionEvent, position: int) -> None:
        self.definitions.take(event, position)

    def flush(self) -> None:
        self.definitions.write(self.conn, self.t.definitions)
        if not self.rows:
            return
        for row in self.rows.values():  # once per model, not per event
            self._refresh_status(row)
        self._write_models()
        self._write_tags()
        self._write_metrics()
        after = {
            model_id: contribution(row, self.metrics.get(model_id, {}))
            for model_id, row in self.rows.items()
        }
        write_counts(self.conn, self.t, self.before, after)
        write_metric_stats(self.conn, self.t, self.before, after)

    def _write_models(self) -> None:
        """Every touched row changed (its position at least): replace them all."""
        models = self.t.models
        delete_in(self.conn, models, "id", [i for i in self.rows if i in self.stored])
        insert_rows(self.conn, models, list(self.rows.values()))

    def _write_tags(self) -> None:
        tags = self.t.tags
        added, removed = [], []
        for model_id, row in self.rows.items():
            before, after = self.tags_before.get(model_id, set()), set(row["tags"])
            added += [{"tag": tag, "model_id": model_id} for tag in after - before]
            removed += [{"key_tag": tag, "key_model": model_id} for tag in before - after]
        if removed:
            self.conn.execute(
                delete(tags).where(
                    and_(
                        tags.c.tag == bindparam("key_tag"),
                        tags.c.model_id == bindparam("key_model"),
                    )
                ),
                removed,
            )
        insert_rows(self.conn, tags, added)

    def _write_metrics(self) -> None:
        """Replace the metric rows of models trained, re-tasked or archived in the batch."""
        table = self.t.metrics
        rows: list[dict[str, Any]] = []
        for model_id in self.metrics_changed:
            row = self.rows[model_id]
            for m in self.metrics.get(model_id, {}).values():
                m.update(project=row["project"], task=row["task"], archived=row["archived"])
                rows.append(m)
        stored = {model_id for model_id, _ in self.stored_metrics} & self.metrics_changed
        delete_in(self.conn, table, "model_id", sorted(stored))
        insert_rows(self.conn, table, rows)


def _deployment(row: dict[str, Any], environment: str) -> Deployment | None:
    served = row["deployments"].get(environment)
    return Deployment(**served) if served is not None else None
