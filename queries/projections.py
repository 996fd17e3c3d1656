"""Operators' view of the projections: where each stands against the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update

from queries.reading import read_errors
from read_model.state import projection_state, read_states
from write_model.errors import ModelNotFound


class ProjectionNotFound(ModelNotFound):
    """No projection has that name."""


def projection_report(engine: Engine, head: int, versions: dict[str, int]) -> list[dict[str, Any]]:
    """One entry per projection the code knows, in the code's order."""
    with read_errors(), engine.connect() as conn:
        states = read_states(conn)
    report = []
    for name, code_version in versions.items():
        state = states.get(name)
        if state is None:
            report.append({"name": name, "version": code_version, "status": "not started"})
            continue
        rebuilding = state.rebuild_generation is not None or state.rebuild_requested
        report.append(
            {
                "name": name,
                "version": state.version,
                "code_version": code_version,
                "generation": state.generation,
                "position": state.position,
                "head": head,
                "lag": max(0, head - state.position),
                "status": "rebuilding" if rebuilding and state.status != "failed" else state.status,
                "error": state.error,
                "error_position": state.error_position,
                "rebuild": (
                    {"generation": state.rebuild_generation, "position": state.rebuild_position}
                    if state.rebuild_generation is not None
                    else None
                ),
                "worker": state.owner,
                "updated_at": state.updated_at,
            }
        )
    return report


def request_rebuild(engine: Engine, name: str, known: set[str]) -> None:
    """The worker holding the projection picks this up between batches."""
    if name not in known:
        raise ProjectionNotFound(f"no projection named {name!r}; known: {sorted(known)}")
    with read_errors(), engine.begin() as conn:
        rows = conn.execute(
            update(projection_state)
            .where(projection_state.c.name == name)
            .values(rebuild_requested=True)
        ).rowcount
    if rows != 1:
        raise ProjectionNotFound(f"projection {name!r} has not started yet")
