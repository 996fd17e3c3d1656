"""Statistics as the registry stood at a time T, from the timeline's checkpoints
and the stretches since (``read_model.held``), never by replaying the log."""

from __future__ import annotations

from collections import Counter
from typing import Any

from queries.directions import directions_as_of
from queries.messages import ModelStatistics
from queries.reading import Snapshot
from queries.statistics import MetricStatistics, statistics_answer
from queries.visibility import Projects, projects_in_view
from read_model.held import Scope, held_metrics, held_models, window_at
from read_model.timeline import TAG_SEPARATOR, timeline_tables


def statistics_as_of(
    snapshot: Snapshot, query: ModelStatistics, as_of: str, visible: Projects = None
) -> dict[str, Any]:
    tl = timeline_tables(snapshot.generation)
    window = window_at(snapshot.conn, tl, as_of)
    scope = Scope(projects_in_view(query.project, visible), query.task)
    by: dict[str, Counter[str]] = {
        d: Counter() for d in ("status", "task", "framework", "deployments", "runs")
    }
    for row in held_models(snapshot.conn, tl, window, as_of, scope):
        _, task, status, framework, listed, count, started, completed, failed = row
        by["status"][status] += count
        by["task"][task] += count
        by["framework"][framework] += count
        by["deployments"].update({e: count for e in listed.split(TAG_SEPARATOR) if e})
        by["runs"].update(started=started, completed=completed, failed=failed)
    metrics: dict[str, MetricStatistics] = {}
    for held in held_metrics(snapshot.conn, tl, window, as_of, scope):
        part = MetricStatistics(held.count, held.total, held.min_value, held.max_value)
        metrics[held.metric] = part.plus(metrics.get(held.metric))
    directions = directions_as_of(snapshot.conn, snapshot.generation, as_of)
    return statistics_answer(by, metrics, directions)
