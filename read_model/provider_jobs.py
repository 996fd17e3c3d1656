"""The provider worker's table: one row per training run or deployment request that a
provider (OpenAI, Hugging Face) carries out, and who is working on it. The SQL that
writes it is the worker's (processes/provider_jobs.py); operators read it through
queries/operations.py.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

JOBS_METADATA = MetaData()

provider_jobs = Table(
    "provider_jobs",
    JOBS_METADATA,
    Column("id", String(100), primary_key=True),  # the run id or the deployment request id
    Column("model_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),  # train | deploy | undeploy | cancel
    Column("backend", String(32), nullable=False),  # openai | huggingface
    Column("environment", String(64)),  # deploy and undeploy
    Column("spec", JSON, nullable=False),  # what the provider needs to start it
    Column("provider_ref", String(200)),  # the provider's job id, once recorded
    Column("cause", String(100), nullable=False),  # the requesting event: <model id>/<version>
    Column("correlation_id", String(200), nullable=False),
    Column("state", String(8), nullable=False),  # open | done
    Column("checks", Integer, nullable=False),  # calls so far (the backoff grows with them)
    Column("opened_at", Float, nullable=False),  # epoch seconds
    Column("due_at", Float, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_until", Float, nullable=False),
    Column("last_error", Text),
)
# Deployment outcomes close by (model, environment); due jobs are found by state and time.
Index("provider_jobs_environment", provider_jobs.c.model_id, provider_jobs.c.environment)
Index("provider_jobs_due", provider_jobs.c.state, provider_jobs.c.due_at)
