"""What the API measures of itself for /metrics: request latency per route, commands by
type and outcome, events appended and the answer cache's hits (per process)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.registry import ModelRegistry
from queries.answers import AnswerCache

access = logging.getLogger("modelledger.access")

# A caller's X-Correlation-ID, as the API's schema states it (api.deps).
CORRELATION_ID = re.compile(r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$")
MAX_CORRELATION_ID = 200
# From a cached answer on the event loop (sub-millisecond) to a slow as_of scan.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class ApiMetrics:
    requests: Histogram
    commands: Counter

    @classmethod
    def register(
        cls, collectors: CollectorRegistry, registry: ModelRegistry, answers: AnswerCache
    ) -> ApiMetrics:
        collectors.register(ProcessCollector(registry, answers))
        return cls(
            requests=Histogram(
                "modelledger_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template and status",
                ["method", "route", "status"],
                buckets=LATENCY_BUCKETS,
                registry=collectors,
            ),
            commands=Counter(
                "modelledger_commands",
                "Commands handled, by command and outcome (ok, or the HTTP status)",
                ["command", "outcome"],
                registry=collectors,
            ),
        )


class ProcessCollector(Collector):
    """Counters this process keeps as plain numbers (no Prometheus in the inner layers)."""

    def __init__(self, registry: ModelRegistry, answers: AnswerCache) -> None:
        self.registry = registry
        self.answers = answers

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "modelledger_events_appended",
            "Events this process appended to the log",
            value=self.registry.events_appended,
        )
        lookups = CounterMetricFamily(
            "modelledger_answer_cache_lookups",
            "Answer cache look-ups by result (hit ratio = hit / (hit + miss))",
            labels=["result"],
        )
        lookups.add_metric(["hit"], self.answers.hits)
        lookups.add_metric(["miss"], self.answers.misses)
        yield lookups
        yield GaugeMetricFamily(
            "modelledger_answer_cache_bytes",
            "Bytes of answers the cache holds (at most MODELLEDGER_ANSWER_CACHE_MB)",
            value=self.answers.size_bytes,
        )


class RequestObserver:
    """Per HTTP request: a correlation id (the caller's X-Correlation-ID, else a new one)
    on every log line written for it and on the answer; its time by route template (not
    path: ids stay out of the metrics); and, with MODELLEDGER_ACCESS_LOG, one access line."""

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation = _correlation_id(scope)
        scope.setdefault("state", {})["correlation_id"] = correlation
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Correlation-ID", correlation)
            await send(message)

        structlog.contextvars.bind_contextvars(correlation_id=correlation)
        try:
            await self.app(scope, receive, sending)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        # Before the lifespan has composed the services, nothing is timed.
        services = getattr(scope["app"].state, "services", None)
        if services is not None:
            requests: Histogram = services.api_metrics.requests
            requests.labels(scope["method"], route, str(status)).observe(seconds)
        if self.access_log:
            access.info(
                "%s %s %d %.1f ms",
                scope["method"],
                route,
                status,
                seconds * 1000,
                extra={"method": scope["method"], "route": route, "status": status},
            )


def _correlation_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-correlation-id":
            given: str = value.decode("latin-1")
            if is_correlation_id(given):
                return given
    return str(uuid.uuid4())


def is_correlation_id(text: str) -> bool:
    """1-200 visible ASCII characters, spaces between them: one that is not is never
    logged nor recorded (commands refuse it, api.deps)."""
    return len(text) <= MAX_CORRELATION_ID and CORRELATION_ID.match(text) is not None
