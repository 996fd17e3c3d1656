# syntax=docker/dockerfile:1

# --- builder: install the project and its dependencies into /opt/venv -------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the package needs (no tests, benchmarks, .venv or var/), so no .dockerignore is needed.
COPY pyproject.toml README.md ./
COPY write_model/ write_model/
COPY commands/ commands/
COPY read_model/ read_model/
COPY projections/ projections/
COPY queries/ queries/
COPY processes/ processes/
COPY adapters/ adapters/
COPY api/ api/
COPY ui/ ui/
COPY modelledger/ modelledger/
RUN pip install --upgrade pip && pip install .

# --- runtime -----------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELLEDGER_HOST=0.0.0.0 \
    MODELLEDGER_PORT=8000 \
    MODELLEDGER_DATA_DIR=/data

RUN groupadd --system --gid 10001 modelledger \
    && useradd --system --uid 10001 --gid modelledger --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin modelledger \
    && mkdir -p /app /data \
    && chown modelledger:modelledger /data

COPY --from=builder /opt/venv /opt/venv

# A .env placed here is read at start-up. Without MODELLEDGER_DATABASE_URL, events go to a
# SQLite file in /data (mount a volume there to keep it).
WORKDIR /app
USER modelledger

EXPOSE 8000
CMD ["modelledger", "serve"]
