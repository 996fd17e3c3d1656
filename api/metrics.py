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
from sqlalchemy.exc import SQLAlchemyError

from api.auth import allow
from api.services import get_services
from queries.errors import QueryError, ReadStoreUnavailable
from queries.operations import standing
from queries.ports import EventLog, LogUnavailable
from queries.tables import ReadTables
from queries.webhooks import webhook_standing
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


class WebhookCollector(Collector):
    """How webhook deliveries go (from the deliverer's tables: it may run elsewhere)."""

    def __init__(self, event_log: EventLog, tables: ReadTables) -> None:
        self.event_log = event_log
        self.tables = tables

    def collect(self) -> Iterator[Metric]:
        try:
            found = webhook_standing(self.tables, self.event_log.head())
        except (LogUnavailable, ReadStoreUnavailable, QueryError, SQLAlchemyError) as error:
            log.warning("metrics: webhooks: %s", error)
            return
        if found["deliverer_lag"] is not None:
            yield GaugeMetricFamily(
                "modelledger_webhook_deliverer_lag_events",
                "Events stored but not yet queued for webhook subscriptions",
                value=found["deliverer_lag"],
            )
        for name, help_text in WEBHOOK_GAUGES.items():
            yield GaugeMetricFamily(f"modelledger_webhook_{name}", help_text, value=found[name])


WEBHOOK_GAUGES = {
    "subscriptions": "Webhook subscriptions (not deleted)",
    "disabled": "Webhook subscriptions disabled (by an admin, a 410, or failing past the schedule)",
    "pending": "Deliveries waiting to be sent or retried",
    "failing": "Deliveries waiting after a failed attempt",
    "held": "Deliveries held while their subscription is disabled",
    "oldest_pending_seconds": "How long the oldest waiting delivery has waited",
}


def metrics_collectors(
    event_log: EventLog, engine: Engine, tables: ReadTables
) -> CollectorRegistry:
    collectors = CollectorRegistry()
    collectors.register(ProjectionCollector(event_log, engine))
    collectors.register(WebhookCollector(event_log, tables))
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
