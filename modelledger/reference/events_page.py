"""The event catalogue: every event class, its version, stored topic, fields and upcasters."""

from __future__ import annotations

from eventsourcing.utils import get_topic

from modelledger.reference.markdown import cell, generated_from, prose
from write_model.api_key import KEY_EVENT_TYPES
from write_model.ended_session import SESSION_EVENT_TYPES
from write_model.metric_definition import DEFINITION_EVENT_TYPES
from write_model.model import EVENT_TYPES
from write_model.webhook import WEBHOOK_EVENT_TYPES

INTRO = """\
A model is one aggregate (`AIModel`), a metric's definition another (`MetricDefinition`,
one per metric name), an API key a third (`ApiKey`), and a web UI session that was
signed out a fourth (`EndedSession`): every change is one of these events, stored in one
ordered log. An event's fields are the JSON the store holds;
changing what an event records means a new version and an upcaster, so events stored long
ago still load (see [Events and rules](../explanation/events-and-rules.md)).

Every event also carries:

"""
CARRIED = (
    ("originator_id", "the model's (or definition's, key's, or ended session's) id"),
    ("originator_version", "the model's version after the event (1, 2, 3... with no gap)"),
    ("timestamp", "when it was recorded (UTC)"),
    (
        "actor",
        "the name of the API key that sent the command (`admin` for "
        "`MODELLEDGER_ADMIN_KEY`, `anonymous` with `MODELLEDGER_AUTH=false`, `seed` for "
        "`modelledger seed`, `cli:<os user>` for the `keys` commands, `serve` for the admin "
        "key it issues on its first start, `<backend>-worker` such as `openai-worker` for "
        "what the provider worker records)",
    ),
    ("correlation_id", "the request's `X-Correlation-ID`, or a new id"),
    (
        "causation_id",
        "the id of the command that recorded it; an event the provider worker records "
        "names the event it answers (`<model id>/<version>`) and keeps its "
        "`correlation_id`",
    ),
)
COMMON = {"originator_topic", *(name for name, _ in CARRIED)}


def render() -> str:
    every = (
        *EVENT_TYPES,
        *DEFINITION_EVENT_TYPES,
        *KEY_EVENT_TYPES,
        *SESSION_EVENT_TYPES,
        *WEBHOOK_EVENT_TYPES,
    )
    sections = [_section(cls) for cls in every]
    return (
        generated_from(
            "Events",
            "`write_model/events.py`, `write_model/metric_definition.py`, "
            "`write_model/api_key.py`, `write_model/ended_session.py` and "
            "`write_model/webhook.py`",
        )
        + INTRO
        + "| Field | Meaning |\n|---|---|\n"
        + "".join(f"| `{name}` | {meaning} |\n" for name, meaning in CARRIED)
        + "\n"
        + "\n".join(sections)
    )


def _section(cls: type) -> str:
    version = getattr(cls, "class_version", 1)
    lines = [
        f"## {cls.__name__}\n",
        prose(_written_doc(cls)) + "\n",
        f"Version {version}, stored as `{get_topic(cls)}`.\n",
    ]
    fields = _fields(cls)
    if fields:
        lines += ["| Field | Type |", "|---|---|"]
        lines += [f"| `{name}` | `{cell(kind)}` |" for name, kind in fields]
        lines.append("")
    upcasters = sorted(n for n in dir(cls) if n.startswith("upcast_v"))
    if upcasters:
        lines.append(
            "Older versions load through " + ", ".join(f"`{n}`" for n in upcasters) + ".\n"
        )
    return "\n".join(lines) + "\n"


def _fields(cls: type) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, kind in vars(klass).get("__annotations__", {}).items():
            if name not in COMMON and not str(kind).startswith("ClassVar"):
                seen[name] = str(kind)
    return list(seen.items())


def _written_doc(cls: type) -> str:
    """The docstring we wrote: the library makes events dataclasses, which give a class
    without one its signature as a docstring."""
    for klass in cls.__mro__:
        doc = vars(klass).get("__doc__")
        ours = klass.__module__.startswith("write_model.")
        if ours and isinstance(doc, str) and doc and not doc.startswith(f"{klass.__name__}("):
            return doc
    raise ValueError(f"{cls.__name__} has no docstring: say when it is recorded")
