"""One model's reader: the model now, at a version or as of a time, its versions, its
deployments and its audit trail, for every way in (REST, UI, GraphQL).

Reads of one model reflect every command on it acknowledged before the read, through
any process, with no position passed: the log says which version that is and where its
last change stands (one indexed look-up), and only an answer at that version is given
(the one cached for it, else the catalogue's once it has taken the change in, else the
model folded from the log). A key that may not see the model is answered in the very
words of an unknown id, before any wait.

Reads by id spread over the whole catalogue, so the cache holds what it can of it: a
miss reads the model's row with the catalogue's state in one statement, and at start
``warm`` fills the cache with the most recently changed models (the likeliest read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from queries.answers import Answer
from queries.catalogue import (
    catalogue_view,
    model_row,
    model_row_and_state,
    model_rows,
    model_versions,
    recently_changed,
)
from queries.deployments import deployed, model_deployments
from queries.directions import Directions, directions_as_of, directions_now
from queries.errors import ProjectionBehind, UnknownModel
from queries.known_directions import KnownDirections
from queries.messages import ListDeployments, ListHistory
from queries.model_parts import ListTrainingRuns, one_run, one_version, runs_page
from queries.models import get_model, model_history, model_view
from queries.ports import EventLog
from queries.reading import Snapshot, read_errors, within_the_log
from queries.sources import timeline_moment
from queries.tables import ReadTables
from queries.visibility import ModelProjects, Projects, ensure_visible
from read_model.encoding import json_bytes
from read_model.tables import (
    CATALOGUE_VERSION,
    DEPLOYMENTS_VERSION,
    TIMELINE_VERSION,
    VERSIONS_VERSION,
)
from write_model.values import instant, model_id_for

# ("model", catalogue generation, id, version, the stamp of the directions it ranks with)
CacheKey = tuple[str, int, UUID, int, int]

# How much of the models' share of the answer cache ``warm`` fills: the rest is room
# for what is read.
WARM_SHARE = 0.75


class ModelReader:
    def __init__(self, tables: ReadTables, event_log: EventLog, projects: ModelProjects) -> None:
        self.tables = tables
        self.event_log = event_log
        self.projects = projects
        self.known = KnownDirections()

    def current(self, model_id: UUID, visible: Projects, min_position: int | None) -> Answer:
        """The model as of every command on it acknowledged before this read."""
        version, changed_at = self.last_change(model_id, visible)
        catalogue, known = self.tables.positions.seen_at.get("catalogue"), self.known.view()
        if catalogue is not None and catalogue.generation == known.generation:
            # (a rebuilt catalogue's answers are its own)
            key = ("model", catalogue.generation, model_id, version, known.directions.stamp)
            found = self.tables.answers.get(key)
            if found is not None and (min_position or 0) <= min(found.position, known.through):
                return found
        if min_position is not None:  # the caller waits (bounded) for its position
            return self._from_catalogue(model_id, visible, max(min_position, changed_at))
        if catalogue is not None:
            found = self._in_one_look(catalogue.generation, model_id, visible, changed_at)
            if found is not None:
                return found
        with self.tables.reading("catalogue", CATALOGUE_VERSION) as snapshot:
            if snapshot.position >= changed_at:
                return self._kept(snapshot, model_id, visible)
            directions = self.directions_at(snapshot.conn, snapshot.generation, snapshot.position)
        # The tables lag behind the model's last change: the log answers at once (ranked
        # with the definitions the tables have).
        return self._folded(model_id, visible, None, None, directions)

    def by_name(
        self, project: str, name: str, visible: Projects, min_position: int | None
    ) -> Answer:
        """The model so named in the project, read as ``current`` reads it (its id is
        derived from the two)."""
        try:
            return self.current(model_id_for(project, name), visible, min_position)
        except UnknownModel:
            raise UnknownModel(f"no model {name!r} in project {project!r}", field="name") from None

    def training_runs(self, model_id: UUID, visible: Projects, query: ListTrainingRuns) -> Answer:
        return runs_page(self.current(model_id, visible, query.min_position), query)

    def training_run(
        self, model_id: UUID, run_id: str, visible: Projects, min_position: int | None
    ) -> Answer:
        return one_run(self.current(model_id, visible, min_position), run_id)

    def version(
        self, model_id: UUID, number: int, visible: Projects, min_position: int | None
    ) -> Answer:
        return one_version(self.versions(model_id, visible, min_position), number)

    def past(
        self,
        model_id: UUID,
        visible: Projects,
        at_version: int | None,
        as_of: datetime | None,
        min_position: int | None = None,
    ) -> Answer:
        """The model folded from the log, at a version or as of a time (the log holds every
        acknowledged change: ``min_position`` is only checked, never waited). Its best
        metrics rank with the definitions in force at ``as_of``; at a version, with those
        in force now, as a read of the model now ranks them."""
        if min_position is not None:
            within_the_log(min_position, self.event_log.head())
        return self._folded(model_id, visible, at_version, as_of, None, min_position)

    def _folded(
        self,
        model_id: UUID,
        visible: Projects,
        at_version: int | None,
        as_of: datetime | None,
        directions: Directions | None,
        min_position: int | None = None,
    ) -> Answer:
        """The model folded from the log, ranked with ``directions`` or (None) those of
        the tables, once they reach ``min_position`` (a definition the caller made)."""
        model, position = get_model(
            self.event_log, model_id, at_version=at_version, as_of=as_of, visible=visible
        )
        if directions is None and as_of is not None:
            # the timeline, once it holds every event up to the model's then (bounded wait)
            at_least = max(position, min_position or 0)
            with (
                self._waiting_for_the_change(model_id, min_position, at_least),
                self.tables.reading("timeline", TIMELINE_VERSION, at_least) as snapshot,
            ):
                moment = timeline_moment(as_of)
                directions = directions_as_of(snapshot.conn, snapshot.generation, moment)
        elif directions is None:
            reading = self.tables.reading("catalogue", CATALOGUE_VERSION, min_position)
            with reading as snapshot:
                directions = self.directions_at(
                    snapshot.conn, snapshot.generation, snapshot.position
                )
        return Answer(json_bytes(model_view(model, directions)), position, model.version)

    def directions_at(self, conn: Connection, generation: int, position: int) -> Directions:
        """The directions of the catalogue at ``position`` (``conn`` reads it): those
        known, while they hold; else read (and known from then on)."""
        known = self.known.view()
        if known.hold_at(generation, position):
            return known.directions
        directions = directions_now(conn, generation)
        self.known.read(directions, generation, position)
        return directions

    def follow_definitions(self, after: int, to: int, changes: Sequence[int]) -> None:
        """Told by the watch: it read every event in (``after``, ``to``], ``changes``
        changed metric definitions. Once the catalogue has one, read them again."""
        self.known.watched(after, to, changes)
        catalogue = self.tables.positions.furthest_of("catalogue")
        if self.known.outdated(catalogue):
            with self.tables.reading("catalogue", CATALOGUE_VERSION) as snapshot:
                self.directions_at(snapshot.conn, snapshot.generation, snapshot.position)

    def history(self, model_id: UUID, visible: Projects, query: ListHistory) -> Answer:
        """A page of the model's audit trail, read from the log: it reflects the model's
        last change, however far the page goes."""
        if query.min_position is not None:
            within_the_log(query.min_position, self.event_log.head())
        items = model_history(self.event_log, model_id, visible)
        later = [item for item in items if item["position"] > query.after]
        page = later[: query.limit]
        next_after = page[-1]["position"] if len(later) > len(page) else None
        body = {"id": str(model_id), "items": page, "next_after": next_after}
        return Answer(json_bytes(body), items[-1]["position"])

    def versions(
        self,
        model_id: UUID,
        visible: Projects,
        min_position: int | None,
        tags: Sequence[str] = (),
    ) -> Answer:
        """The model's trained versions (those with every one of ``tags``)."""
        at_least = self._through_last_change(model_id, visible, min_position)
        with self._waiting_for_the_change(model_id, min_position, at_least):
            known_at = self._known(model_id, visible, at_least)
            with self.tables.reading("versions", VERSIONS_VERSION, at_least) as snapshot:
                items = model_versions(snapshot, model_id)
        if tags:
            items = [v for v in items if set(tags) <= set(v["tags"])]
        body = {"id": str(model_id), "items": items}
        return Answer(json_bytes(body), min(known_at, snapshot.position))

    def deployments(
        self,
        model_id: UUID,
        visible: Projects,
        min_position: int | None,
        as_of: datetime | None,
    ) -> Answer:
        at_least = self._through_last_change(model_id, visible, min_position)
        when = instant(as_of) if as_of is not None else None
        with self._waiting_for_the_change(model_id, min_position, at_least):
            known_at = self._known(model_id, visible, at_least)
            with self.tables.reading("deployments", DEPLOYMENTS_VERSION, at_least) as snapshot:
                found = model_deployments(snapshot, model_id, when)
        body = {"id": str(model_id), "as_of": when, **found}
        return Answer(json_bytes(body), min(known_at, snapshot.position))

    def serving(self, query: ListDeployments, visible: Projects) -> Answer:
        """Every model serving an environment, now or as of a time (registry-wide)."""
        as_of = instant(query.as_of) if query.as_of is not None else None

        def shows(model_id: str) -> bool:
            assert visible is not None
            return self.projects.project_of(UUID(model_id)) in visible

        with self.tables.reading("deployments", DEPLOYMENTS_VERSION, query.min_position) as s:
            page = deployed(s, query, as_of, None if visible is None else shows)
            return Answer(json_bytes(page), s.position)

    def last_change(self, model_id: UUID, visible: Projects) -> tuple[int, int]:
        """The model's version and last position in the log (unknown when it has none,
        or the caller may not see it: asked before any wait, so a hidden model answers
        as soon, and in the same words, as an unknown one)."""
        last = self.event_log.last_change(model_id)
        if last is None:
            raise UnknownModel(f"model {model_id} not found", field="model_id")
        if visible is not None:
            ensure_visible(self.projects.project_of(model_id) or "", visible, model_id)
        return last

    def warm(self, share: float = WARM_SHARE, page: int = 200) -> int:
        """Fill ``share`` of the answer cache with the most recently changed models
        (blocking: in a thread, at start). Returns how many were kept."""
        answers, chosen, spent, before = self.tables.answers, [], 0, None
        room = answers.room(("model",)) * share
        while spent < room:
            with self.tables.reading("catalogue", CATALOGUE_VERSION) as snapshot:
                rows = recently_changed(snapshot, page, before)
                for row in rows:
                    key, answer = self._answer(snapshot, row)
                    kept = answers.pack(key, answer)
                    chosen.append((key, kept))
                    spent += kept.cost
                    if spent >= room:
                        break
            if len(rows) < page:
                break
            before = (rows[-1].updated_at, rows[-1].id)
        for key, kept in reversed(chosen):  # the newest last: the last to be evicted
            answers.keep(key, kept)
        return len(chosen)

    def refresh(self, changes: Sequence[tuple[UUID, int]]) -> int:
        """Models changed (``changes``: model and version, from the log, all taken in by
        the catalogue) whose answer at the version before is cached: read again, in one
        statement, so gets by id stay hits while models change. How many were read."""
        seen = self.tables.positions.seen_at.get("catalogue")
        if seen is None or not changes:
            return 0
        first: dict[UUID, int] = {}
        for model_id, version in changes:
            first.setdefault(model_id, version)
        answers, stale = self.tables.answers, []
        for model_id, version in first.items():
            stamp = self.known.directions.stamp
            if answers.discard(("model", seen.generation, model_id, version - 1, stamp)):
                stale.append(model_id)
        if not stale:
            return 0
        with self.tables.reading("catalogue", CATALOGUE_VERSION) as snapshot:
            rows = model_rows(snapshot, stale)
            for row in rows:
                self._keep(snapshot, row)
        return len(rows)

    def _in_one_look(
        self, generation: int, model_id: UUID, visible: Projects, changed_at: int
    ) -> Answer | None:
        """The model's row and the catalogue's state in one statement, at the generation
        last seen: the answer when the state is still that generation, at this code's
        version, and has taken in the model's last change; else None (read as usual)."""
        with read_errors(), self.tables.connect() as conn:  # no connection: a 503, as any read
            try:
                row = model_row_and_state(conn, generation, model_id)
                if (
                    row is None
                    or row.id is None
                    or (row.state_generation, row.state_version) != (generation, CATALOGUE_VERSION)
                    or row.state_position < changed_at
                ):
                    return None
                ensure_visible(row.project, visible, model_id)
                return self._keep(Snapshot(conn, generation, row.state_position), row)
            except DBAPIError:  # e.g. a rebuild's swap dropped the generation: read as usual
                return None

    def _answer(self, snapshot: Snapshot, row: Any) -> tuple[CacheKey, Answer]:
        # Keyed by the version it shows and the directions it ranks with: such an
        # answer never changes.
        directions = self.directions_at(snapshot.conn, snapshot.generation, snapshot.position)
        key = ("model", snapshot.generation, UUID(row.id), row.version, directions.stamp)
        body = json_bytes(catalogue_view(row, directions))
        return key, Answer(body, snapshot.position, row.version)

    def _keep(self, snapshot: Snapshot, row: Any) -> Answer:
        key, found = self._answer(snapshot, row)
        self.tables.answers.put(key, found)
        return found

    def _from_catalogue(self, model_id: UUID, visible: Projects, at_least: int) -> Answer:
        with self.tables.reading("catalogue", CATALOGUE_VERSION, at_least) as snapshot:
            return self._kept(snapshot, model_id, visible)

    def _kept(self, snapshot: Snapshot, model_id: UUID, visible: Projects) -> Answer:
        row = _visible_row(snapshot, model_id, visible)
        return self._keep(snapshot, row)

    def _known(self, model_id: UUID, visible: Projects, at_least: int) -> int:
        with self.tables.reading("catalogue", CATALOGUE_VERSION, at_least) as snapshot:
            _visible_row(snapshot, model_id, visible)
            return snapshot.position

    def _through_last_change(
        self, model_id: UUID, visible: Projects, min_position: int | None
    ) -> int:
        """The position a read of one model's tables must reach: its last change, or later."""
        return max(min_position or 0, self.last_change(model_id, visible)[1])

    @contextmanager
    def _waiting_for_the_change(
        self, model_id: UUID, min_position: int | None, at_least: int
    ) -> Iterator[None]:
        """Tables not yet at the model's last change: a 503 about that change, not about
        a ``min_position`` the caller never sent."""
        try:
            yield
        except ProjectionBehind as behind:
            if behind.field != "min_position" or (min_position or 0) >= at_least:
                raise
            raise ProjectionBehind(
                f"the tables have not yet taken in model {model_id}'s last change "
                f"(position {at_least}); retry shortly"
            ) from behind


def _visible_row(snapshot: Snapshot, model_id: UUID, visible: Projects) -> Any:
    row = model_row(snapshot, model_id)
    ensure_visible(row.project, visible, model_id)
    return row
