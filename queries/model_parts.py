"""A model's training runs and versions as resources of their own. Each is cut from the
model's answer, so it reads as the model does: every command on the model acknowledged
before the read shows, with no position passed."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field

from queries.answers import Answer
from queries.errors import InvalidQuery, UnknownPart
from queries.messages import Query
from read_model.encoding import json_bytes


class ListTrainingRuns(Query):
    """A model's runs in the order they started, a page at a time."""

    state: Literal["running", "completed", "failed"] | None = Field(
        default=None, description="only runs in this state"
    )
    after: str | None = Field(
        default=None, max_length=200, description="the run_id the page before ended with"
    )
    limit: int = Field(default=100, ge=1, le=1000)


def runs_page(model: Answer, query: ListTrainingRuns) -> Answer:
    view = _view(model)
    runs = view["training_runs"]
    if query.after is not None:  # (in the order runs started, whatever their state now)
        ids = [r["run_id"] for r in runs]
        if query.after not in ids:
            raise InvalidQuery(f"the model has no run {query.after}", field="query.after")
        runs = runs[ids.index(query.after) + 1 :]
    runs = [r for r in runs if query.state in (None, r["state"])]
    page = runs[: query.limit]
    next_after = page[-1]["run_id"] if len(runs) > len(page) else None
    body = {"id": view["id"], "items": page, "next_after": next_after}
    return Answer(json_bytes(body), model.position, model.version)


def one_run(model: Answer, run_id: str) -> Answer:
    view = _view(model)
    what = f"model {view['id']} has no training run {run_id}"
    return _one(model, view["training_runs"], "run_id", run_id, what)


def one_version(versions: Answer, number: int) -> Answer:
    """One of the model's versions, from the answer of all of them."""
    view = _view(versions)
    return _one(
        versions, view["items"], "number", number, f"model {view['id']} has no version {number}"
    )


def _one(whole: Answer, items: list[dict[str, Any]], key: str, value: Any, missing: str) -> Answer:
    """The item whose ``key`` is ``value``, answered at the whole answer's position."""
    for item in items:
        if item[key] == value:
            return Answer(json_bytes(item), whole.position, whole.version)
    raise UnknownPart(missing, field=key)


def _view(model: Answer) -> dict[str, Any]:
    view: dict[str, Any] = orjson.loads(model.body)
    return view
