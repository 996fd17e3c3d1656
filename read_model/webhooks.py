"""The webhooks' tables.

``webhooks_table``: the subscriptions, for the admins' list (a projection: never a
secret). The others are the deliverer's own (processes/webhooks/queue.py writes them;
queries/webhooks.py reads them). They are not projections: a rebuild does not touch
them, since what was delivered, when and with what answer, is nowhere else.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from read_model.tables import SORTABLE, generation_name

WEBHOOKS_VERSION = 1
DELIVERIES_METADATA = MetaData()
# An id that counts up on every store (SQLite's rowid alias needs INTEGER).
SEQUENCE = BigInteger().with_variant(Integer, "sqlite")
RESPONSE_KEPT = 1024  # bytes of an endpoint's answer kept per attempt
HELD = 1e18  # the due time of a disabled subscription's deliveries: never, until enabled


@cache
def webhooks_table(generation: int) -> Table:
    return Table(
        generation_name("webhooks", generation),
        MetaData(),
        Column("webhook_id", SORTABLE, primary_key=True),
        Column("url", Text, nullable=False),
        Column("event_types", JSON),  # null: every event delivered
        Column("projects", JSON),  # null: every project
        Column("description", Text, nullable=False),
        Column("enabled", Boolean, nullable=False),
        Column("disabled_reason", Text, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("created_by", String, nullable=False),
        Column("updated_at", String(40), nullable=False),
        Column("secret_rotated_at", String(40)),
        Column("previous_secret_until", String(40)),
        Column("position", BigInteger, nullable=False),
    )


# One row per message to send: an event for a subscription, a redelivery, a replayed
# event or a test. ``queue`` keeps order: a subscription's rows of one queue (a model's
# id) are sent one at a time, oldest first.
webhook_deliveries = Table(
    "webhook_deliveries",
    DELIVERIES_METADATA,
    Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
    Column("delivery_id", String(32), nullable=False, unique=True),
    Column("message_id", String(64), nullable=False),  # webhook-id: the receiver's key
    Column("webhook_id", String(36), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("position", BigInteger),  # the event's (null: a test)
    Column("kind", String(12), nullable=False),  # event | redelivery | replay | test
    Column("event_type", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(12), nullable=False),  # pending | delivered | failed | cancelled
    Column("attempts", Integer, nullable=False),  # in this round of the retry schedule
    Column("due_at", Float, nullable=False),  # epoch seconds
    Column("leased_by", String(200)),
    Column("leased_until", Float),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
)
Index(
    "webhook_deliveries_queue",
    webhook_deliveries.c.webhook_id,
    webhook_deliveries.c.queue,
    webhook_deliveries.c.state,
    webhook_deliveries.c.seq,
)
Index("webhook_deliveries_due", webhook_deliveries.c.state, webhook_deliveries.c.due_at)
Index("webhook_deliveries_finished", webhook_deliveries.c.finished_at)

webhook_attempts = Table(
    "webhook_attempts",
    DELIVERIES_METADATA,
    Column("id", SEQUENCE, primary_key=True, autoincrement=True),
    Column("delivery_id", String(32), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("status_code", Integer),  # null: no answer (refused, timed out...)
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
    Column("response", Text),  # the first RESPONSE_KEPT bytes of the answer
)

# A replay asked for: the deliverer reads the log from ``cursor`` to ``until`` and queues
# what the subscription's filters match, as new messages.
webhook_replays = Table(
    "webhook_replays",
    DELIVERIES_METADATA,
    Column("replay_id", String(32), primary_key=True),
    Column("webhook_id", String(36), nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("until", BigInteger, nullable=False),
    Column("asked_at", BigInteger, nullable=False),  # the log's head when it was asked for
    Column("created_at", Float, nullable=False),
)
