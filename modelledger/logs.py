"""Logging for the service's processes: one line per record, JSON or text, carrying the
request's correlation id (bound per request by the API) on every line logged for it."""

from __future__ import annotations

import logging
from typing import Literal

import structlog


def configure_logging(level: str, form: Literal["text", "json"]) -> None:
    """Route every logger (ours, uvicorn's, the libraries') through one formatter."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if form == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),  # fields given as extra= (an access line's status)
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # uvicorn writes an access line whenever this logger has a handler, ours or not; ours
    # (modelledger.access, MODELLEDGER_ACCESS_LOG) has the route and correlation id. Left
    # on, it would cost every request a line nobody asked for (docs/benchmarks.md).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers = []
    uvicorn_access.propagate = False
