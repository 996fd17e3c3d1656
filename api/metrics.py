"""Prometheus metrics: the projections' position, lag and failures, read at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from api.auth import allow
from api.services import get_services
from queries.errors import ReadStoreUnavailable
from queries.operations import standing
from queries.ports import EventLog, LogUnavailable
from write_model.access import Action

router = APIRouter(tags=["operations"], dependencies=[allow(Action.ADMINISTER)])
log = logging.getLogger("modelledger.metrics")


class ProjectionCollector(Collector):
    def __init__(self, event_log: EventLog, engine: Engine) -> None:
        self.event_log = event_log
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            head = self.event_log.head()
            found = standing(self.engine)
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
        for name, state in sorted(found.projections.items()):
            position.add_metric([name], state.position)
            lag.add_metric([name], max(0, head - state.position))
            failed.add_metric([name], 1 if state.status == "failed" else 0)
        yield from (position, lag, failed)
        relay_lag = GaugeMetricFamily(
            "modelledger_relay_lag_events",
            "Events stored but not yet acknowledged by Kafka",
            labels=["relay"],
        )
        for name, relayed in sorted(found.relays.items()):
            relay_lag.add_metric([name], max(0, head - relayed))
        yield relay_lag
        if (worker := found.intake) is not None:  # follows the log too, not into Kafka
            yield GaugeMetricFamily(
                "modelledger_provider_worker_lag_events",
                "Events stored but not yet taken in by the provider worker",
                value=max(0, head - worker),
            )


def metrics_collectors(event_log: EventLog, engine: Engine) -> CollectorRegistry:
    collectors = CollectorRegistry()
    collectors.register(ProjectionCollector(event_log, engine))
    return collectors


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    collectors = get_services(request).metrics
    return Response(generate_latest(collectors), media_type=CONTENT_TYPE_LATEST)
