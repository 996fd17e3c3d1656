"""Prometheus metrics: the projections' position, lag and failures, read at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import allow
from modelledger.bootstrap import Ledger
from processes.provider_intake import WORKER_NAME
from queries.errors import ReadStoreUnavailable
from queries.operations import relay_positions
from queries.ports import LogUnavailable
from queries.reading import read_errors
from read_model.state import read_states
from write_model.access import Action

router = APIRouter(tags=["operations"], dependencies=[allow(Action.ADMINISTER)])
log = logging.getLogger("modelledger.metrics")


class ProjectionCollector(Collector):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        try:
            head = self.ledger.event_log.head()
            with read_errors(), self.ledger.read_engine.connect() as conn:
                states = read_states(conn)
                relays = relay_positions(conn)
        except (LogUnavailable, ReadStoreUnavailable) as error:  # the scrape still answers
            log.warning("metrics: %s", error.detail)
            return
        yield GaugeMetricFamily(
            "modelledger_event_log_head", "Position of the last stored event", value=head
        )
        position = GaugeMetricFamily(
            "modelledger_projection_position", "Last event position applied", labels=["projection"]
        )
        lag = GaugeMetricFamily(
            "modelledger_projection_lag_events",
            "Events stored but not yet applied",
            labels=["projection"],
        )
        failed = GaugeMetricFamily(
            "modelledger_projection_failed",
            "1 when the projection stopped on an event it could not apply",
            labels=["projection"],
        )
        for name, state in sorted(states.items()):
            position.add_metric([name], state.position)
            lag.add_metric([name], max(0, head - state.position))
            failed.add_metric([name], 1 if state.status == "failed" else 0)
        yield from (position, lag, failed)
        relay_lag = GaugeMetricFamily(
            "modelledger_relay_lag_events",
            "Events stored but not yet acknowledged by Kafka",
            labels=["relay"],
        )
        worker = relays.pop(WORKER_NAME, None)  # follows the log too, but not into Kafka
        for name, relayed in sorted(relays.items()):
            relay_lag.add_metric([name], max(0, head - relayed))
        yield relay_lag
        if worker is not None:
            yield GaugeMetricFamily(
                "modelledger_provider_worker_lag_events",
                "Events stored but not yet taken in by the provider worker",
                value=max(0, head - worker),
            )


def metrics_registry(ledger: Ledger) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ProjectionCollector(ledger))
    return registry


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
