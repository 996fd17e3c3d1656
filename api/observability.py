"""What the API measures of itself for /metrics: request latency per route, commands by
type and outcome, events appended and the answer cache's hits (per process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelledger.bootstrap import Ledger

# From a cached answer on the event loop (sub-millisecond) to a slow as_of scan.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class ApiMetrics:
    requests: Histogram
    commands: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry, ledger: Ledger) -> ApiMetrics:
        registry.register(LedgerCollector(ledger))
        return cls(
            requests=Histogram(
                "modelledger_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template and status",
                ["method", "route", "status"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            commands=Counter(
                "modelledger_commands",
                "Commands handled, by command and outcome (ok, or the HTTP status)",
                ["command", "outcome"],
                registry=registry,
            ),
        )


class LedgerCollector(Collector):
    """Counters the ledger keeps as plain numbers (no Prometheus in the inner layers)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "modelledger_events_appended",
            "Events this process appended to the log",
            value=self.ledger.registry.events_appended,
        )
        answers = CounterMetricFamily(
            "modelledger_answer_cache_lookups",
            "Answer cache look-ups by result (hit ratio = hit / (hit + miss))",
            labels=["result"],
        )
        answers.add_metric(["hit"], self.ledger.answers.hits)
        answers.add_metric(["miss"], self.ledger.answers.misses)
        yield answers


class RequestTimer:
    """Times every HTTP request by its route template (not its path: ids stay out)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics: ApiMetrics | None = getattr(scope["app"].state, "api_metrics", None)
            route = scope.get("route")
            if metrics is not None:
                metrics.requests.labels(
                    scope["method"], getattr(route, "path", "unmatched"), str(status)
                ).observe(time.perf_counter() - started)
