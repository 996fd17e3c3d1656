"""Queries over the catalogue read model: one model, its versions and its deployments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Row, Select, Table, select

from queries.directions import Directions
from queries.errors import UnknownModel
from queries.reading import Snapshot
from read_model.state import projection_state
from read_model.tables import catalogue_tables, versions_table

# What a model's answer is made of (catalogue_view; not the search columns).
MODEL_COLUMNS = (
    *("id", "version", "name", "project", "description", "task", "framework", "tags"),
    *("configuration", "owner", "status", "created_at", "updated_at", "latest_version"),
    *("metric_extremes", "versions", "training_runs", "deployments", "pending_deployments"),
)


def answer_columns(models: Table) -> list[Column[Any]]:
    return [models.c[name] for name in MODEL_COLUMNS]


def model_row(snapshot: Snapshot, model_id: UUID) -> Row[Any]:
    models = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name).models
    row = snapshot.conn.execute(select(models).where(models.c.id == str(model_id))).first()
    if row is None:
        raise UnknownModel(f"model {model_id} not found", field="model_id")
    return row


def model_row_and_state(conn: Connection, generation: int, model_id: UUID) -> Row[Any] | None:
    """The catalogue's state and (if there) the model's row of ``generation``, in one
    statement, so one snapshot: the state's ``generation``, ``version`` and ``position``
    say whether the row may be read as ``reading`` would (labelled ``state_...``)."""
    models = catalogue_tables(generation, conn.dialect.name).models
    state = projection_state
    statement = (
        select(
            state.c.generation.label("state_generation"),
            state.c.version.label("state_version"),
            state.c.position.label("state_position"),
            *answer_columns(models),
        )
        .select_from(state.outerjoin(models, models.c.id == str(model_id)))
        .where(state.c.name == "catalogue")
    )
    return conn.execute(statement).first()


def model_rows(snapshot: Snapshot, model_ids: Sequence[UUID]) -> list[Row[Any]]:
    """The rows of these models (those in the catalogue)."""
    models = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name).models
    query = select(*answer_columns(models))
    ids = [str(model_id) for model_id in model_ids]
    return list(snapshot.conn.execute(query.where(models.c.id.in_(ids))))


def recently_changed(
    snapshot: Snapshot, limit: int, before: tuple[str, str] | None
) -> list[Row[Any]]:
    """Models' rows, the most recently updated first, ``limit`` at a time (after the
    ``(updated_at, id)`` of the last row of the page before)."""
    models = catalogue_tables(snapshot.generation, snapshot.conn.dialect.name).models
    query: Select[Any] = select(*answer_columns(models))
    if before is not None:
        query = query.where(
            (models.c.updated_at < before[0])
            | ((models.c.updated_at == before[0]) & (models.c.id < before[1]))
        )
    order = (models.c.updated_at.desc(), models.c.id.desc())
    return list(snapshot.conn.execute(query.order_by(*order).limit(limit)))


def catalogue_view(row: Row[Any], directions: Directions) -> dict[str, Any]:
    """A catalogue row in the shape of the model resource (the same fields, in the
    same form, as folding the model's events gives), its best metrics by ``directions``."""
    return {
        "id": row.id,
        "version": row.version,
        "name": row.name,
        "project": row.project,
        "description": row.description,
        "task": row.task,
        "framework": row.framework,
        "tags": list(row.tags),
        "configuration": dict(row.configuration),
        "owner": row.owner,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "latest_version": row.latest_version or None,
        "best_metrics": directions.best(row.metric_extremes),
        # (rows from before versions had a description and tags, or a source version, read
        # as having none: no event before those could give a version one)
        "versions": [
            {"description": "", "tags": [], "source_version": None, **v} for v in row.versions
        ],
        "training_runs": list(row.training_runs.values()),
        "deployments": dict(row.deployments),
        "pending_deployments": dict(row.pending_deployments),
    }


SUMMARY_COLUMNS = (
    "id",
    "version",
    "name",
    "project",
    "description",
    "task",
    "framework",
    "tags",
    "owner",
    "status",
    "created_at",
    "updated_at",
    "latest_version",
    "metric_extremes",
    "deployments",
)


def summary_view(row: Row[Any], directions: Directions) -> dict[str, Any]:
    """What a search hit shows: enough to choose, without runs and versions."""
    return {
        "id": row.id,
        "version": row.version,
        "name": row.name,
        "project": row.project,
        "description": row.description,
        "task": row.task,
        "framework": row.framework,
        "tags": list(row.tags),
        "owner": row.owner,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "latest_version": row.latest_version or None,
        "best_metrics": directions.best(row.metric_extremes),
        "deployments": {
            env: {"model_version": d["model_version"], "endpoint_url": d["endpoint_url"]}
            for env, d in row.deployments.items()
        },
    }


def model_versions(snapshot: Snapshot, model_id: UUID) -> list[dict[str, Any]]:
    table = versions_table(snapshot.generation)
    rows = snapshot.conn.execute(
        select(table).where(table.c.model_id == str(model_id)).order_by(table.c.number)
    ).all()
    return [
        {
            "number": row.number,
            "run_id": row.run_id,
            "metrics": dict(row.metrics),
            "artifact_uri": row.artifact_uri,
            "output_model": row.output_model,
            "source_version": row.source_version,
            "created_at": row.created_at,
            "created_by": row.created_by,
            "position": row.position,
            "description": row.description,
            "tags": list(row.tags),
        }
        for row in rows
    ]
