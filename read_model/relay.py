"""Where each follower of the log that acts outside (the Kafka relay, the provider worker's
intake, the webhook deliverer) stands: the last position it has carried out.
processes/positions.py moves it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table

RELAY_METADATA = MetaData()
PROVIDER_INTAKE = "provider-worker"  # the provider worker's intake: its row
WEBHOOK_DELIVERER = "webhooks"  # the webhook deliverer's

relay_state = Table(
    "relay_state",
    RELAY_METADATA,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", String(40), nullable=False),
)
