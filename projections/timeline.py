"""The timeline projection: every state each model was in, and from when to when, so
search, statistics and leaderboards can answer "as of T" with one indexed query
instead of replaying the log.

It applies the catalogue projection's own handlers (so a stretch is exactly the
catalogue row the model had then) and, after each event, closes the model's
open stretch and opens a new one; and the same for each of its metrics when the
event changed them (trained, re-tasked, archived). Each model's whole row and
metric state are kept apart (``timeline_state``) for the next batch to go on from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import Connection, and_, bindparam, update

from projections.base import delete_in, event_time, insert_rows, new_models, select_in
from projections.catalogue import CatalogueProjection
from projections.checkpoints import advance_segments
from projections.metric_definitions import DefinitionStretches
from read_model.exact import canonical_text, decimal_of
from read_model.tables import TIMELINE_VERSION
from read_model.timeline import OPEN, TimelineTables, tags_key, timeline_tables, words_of
from write_model.metric_definition import DEFINITION_EVENT_TYPES
from write_model.model import AIModel


def run_counts(runs: dict[str, dict[str, Any]]) -> tuple[int, int, int]:
    states = [run["state"] for run in runs.values()]
    return len(states), states.count("completed"), states.count("failed")


class TimelineProjection(CatalogueProjection):
    name = "timeline"
    version = TIMELINE_VERSION
    # Events per checkpoint: statistics as of T read one checkpoint and up to this
    # many events' stretches; each checkpoint costs a scan of the open stretches.
    checkpoint_every: ClassVar[int] = 10_000

    def __init__(self, conn: Connection, generation: int) -> None:
        super().__init__(conn, generation)
        self.tl: TimelineTables = timeline_tables(generation)
        self.open: dict[str, dict[str, Any]] = {}  # model id -> its open stretch
        self.open_metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.stored_open: set[tuple[Any, ...]] = set()  # key + from_position, stored earlier
        self.new: list[dict[str, Any]] = []
        self.new_metrics: list[dict[str, Any]] = []
        self.ended: list[dict[str, Any]] = []
        self.ended_metrics: list[dict[str, Any]] = []
        self.definition_stretches = DefinitionStretches()

    # -- tables -------------------------------------------------------------

    @classmethod
    def create_tables(cls, conn: Connection, generation: int) -> None:
        timeline_tables(generation).metadata.create_all(conn)

    @classmethod
    def drop_tables(cls, conn: Connection, generation: int) -> None:
        timeline_tables(generation).metadata.drop_all(conn)

    @classmethod
    def table_names(cls, generation: int, dialect: str) -> list[str]:
        t = timeline_tables(generation)
        return [t.models.name, t.metrics.name, t.state.name, t.definitions.name]

    # -- batch --------------------------------------------------------------

    def prepare(self, events: Sequence[tuple[int, AIModel.Event]]) -> None:
        # (a metric definition's event touches no model)
        ids = {self.key(event) for _, event in events if isinstance(event, AIModel.Event)}
        for model_id, (row, metrics, stretch, metric_stretches) in self.taken(ids).items():
            self.rows[model_id], self.metrics[model_id] = row, metrics
            self._open(stretch, metric_stretches.values())
        read = ids - self.rows.keys() - new_models(events)
        for row in select_in(self.conn, self.tl.state, "id", read):
            self.rows[row.id] = dict(row.document)
            self.metrics[row.id] = {k: _from_json(m) for k, m in row.metric_state.items()}
        self.stored.update(self.rows)
        # Only the open stretches: a model's closed ones grow with every change it had,
        # and reading and decoding them all would cost more with every change.
        models, metrics = self.tl.models, self.tl.metrics
        read &= self.rows.keys()
        stretches = select_in(self.conn, models, "id", read, models.c.to_time == OPEN)
        metric_stretches = select_in(
            self.conn, metrics, "model_id", read, metrics.c.to_time == OPEN
        )
        for row in stretches:
            self._open(dict(row._mapping), ())
        for row in metric_stretches:
            self._open(None, [dict(row._mapping)])

    def _open(self, stretch: dict[str, Any] | None, metrics: Iterable[dict[str, Any]]) -> None:
        """A model's open stretch and its metrics', as stored by an earlier batch."""
        if stretch is not None:
            self.open[stretch["id"]] = stretch
            self.stored_open.add((stretch["id"], stretch["from_position"]))
        for m in metrics:
            self.open_metrics[(m["model_id"], m["metric"])] = m
            self.stored_open.add((m["model_id"], m["metric"], m["from_position"]))

    def keep(self) -> dict[str, Any]:
        """Each model's state and open stretches, as written."""
        by_model: dict[str, dict[str, dict[str, Any]]] = {}
        for (model_id, metric), stretch in self.open_metrics.items():
            by_model.setdefault(model_id, {})[metric] = stretch
        return {
            i: (row, self.metrics.get(i, {}), self.open.get(i), by_model.get(i, {}))
            for i, row in self.rows.items()
        }

    @classmethod
    @cache
    def handler(cls, event_type: type) -> Callable[[Any, Any, int], None]:
        """The catalogue's handler for the event, then a new stretch (a metric
        definition's change is a stretch of its own)."""
        if event_type in DEFINITION_EVENT_TYPES:
            return lambda self, event, position: self.definition_stretches.take(event, position)
        apply = CatalogueProjection.handler(event_type)

        def applied(self: TimelineProjection, event: AIModel.Event, position: int) -> None:
            apply(self, event, position)
            self._new_stretch(event, position)

        return applied

    def _new_stretch(self, event: AIModel.Event, position: int) -> None:
        model_id = self.key(event)
        row = self.rows[model_id]
        self._refresh_status(row)
        when = event_time(event)
        self._end(self.open.get(model_id), position, when, self.ended, model_id)
        started, completed, failed = run_counts(row["training_runs"])
        stretch = {
            "id": model_id,
            "from_position": position,
            "from_time": when,
            "to_position": None,
            "to_time": OPEN,
            "version": row["version"],
            "name": row["name"],
            "project": row["project"],
            "description": row["description"],
            "task": row["task"],
            "framework": row["framework"],
            "tags": list(row["tags"]),
            "tags_key": tags_key(row["tags"]),
            "words": words_of(row["name"], row["description"], row["tags_text"]),
            "owner": row["owner"],
            "status": row["status"],
            "archived": row["archived"],
            "latest_version": row["latest_version"],
            "metric_extremes": dict(row["metric_extremes"]),
            "deployments": {
                env: {"model_version": d["model_version"], "endpoint_url": d["endpoint_url"]}
                for env, d in row["deployments"].items()
            },
            "environments": tags_key(row["deployments"]) if row["deployments"] else "",
            "runs_started": started,
            "runs_completed": completed,
            "runs_failed": failed,
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        self.open[model_id] = stretch
        self.new.append(stretch)
        if model_id in self.metrics_changed:
            self.metrics_changed.discard(model_id)
            self._new_metric_stretches(model_id, row, position, when)

    def _new_metric_stretches(
        self, model_id: str, row: dict[str, Any], position: int, when: str
    ) -> None:
        for metric, m in self.metrics.get(model_id, {}).items():
            key = (model_id, metric)
            self._end(self.open_metrics.get(key), position, when, self.ended_metrics, key)
            stretch = {
                "model_id": model_id,
                "metric": metric,
                "from_position": position,
                "from_time": when,
                "to_position": None,
                "to_time": OPEN,
                "name": row["name"],
                "project": row["project"],
                "task": row["task"],
                "archived": row["archived"],
                **{k: m[k] for k in ("count", "total", "min_value", "min_version")},
                **{k: m[k] for k in ("max_value", "max_version")},
            }
            self.open_metrics[key] = stretch
            self.new_metrics.append(stretch)

    def _end(
        self,
        stretch: dict[str, Any] | None,
        position: int,
        when: str,
        ended: list[dict[str, Any]],
        key: Any,
    ) -> None:
        if stretch is None:
            return
        stretch.update(to_position=position, to_time=when)
        parts = key if isinstance(key, tuple) else (key,)
        if (*parts, stretch["from_position"]) in self.stored_open:
            ended.append(stretch)  # stored by an earlier batch: updated at flush

    # -- flush --------------------------------------------------------------

    def flush(self) -> None:
        self.definition_stretches.write(self.conn, self.tl.definitions)
        state = self.tl.state
        delete_in(self.conn, state, "id", sorted(self.stored))
        insert_rows(
            self.conn,
            state,
            [
                {
                    "id": i,
                    "document": row,
                    "metric_state": {k: _to_json(m) for k, m in self.metrics.get(i, {}).items()},
                }
                for i, row in self.rows.items()
            ],
        )
        self._close(self.tl.models, ["id"], self.ended)
        self._close(self.tl.metrics, ["model_id", "metric"], self.ended_metrics)
        insert_rows(self.conn, self.tl.models, self.new)
        insert_rows(self.conn, self.tl.metrics, self.new_metrics)
        advance_segments(self.conn, self.tl, self.new, self.checkpoint_every)

    def _close(self, table: Any, keys: list[str], ended: list[dict[str, Any]]) -> None:
        if not ended:
            return
        where = [table.c[k] == bindparam(f"key_{k}") for k in [*keys, "from_position"]]
        values: dict[str, Any] = {
            "to_position": bindparam("to_position"),
            "to_time": bindparam("to_time"),
        }
        self.conn.execute(
            update(table).where(and_(*where)).values(**values),
            [
                {
                    **{f"key_{k}": s[k] for k in [*keys, "from_position"]},
                    "to_position": s["to_position"],
                    "to_time": s["to_time"],
                }
                for s in ended
            ],
        )


def _to_json(metric: dict[str, Any]) -> dict[str, Any]:
    """A model's metric state for JSON, which has no exact decimals: its sum as text."""
    return {**metric, "total": canonical_text(metric["total"])}


def _from_json(metric: dict[str, Any]) -> dict[str, Any]:
    return {**metric, "total": decimal_of(metric["total"])}
