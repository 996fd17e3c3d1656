# The two commands: `make run` and `make test` install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install browser lint typecheck docs docs-reference docs-screenshots unit integration e2e \
	bench bench-read bench-mlflow bench-migrate bench-graphql clean

# The client (clients/python) is installed editable beside the server: its tests run on
# the working tree.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e './clients/python[cli]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/modelledger serve

# Three workers on two cores: many tests wait on the servers they start (docs/benchmarks.md).
test: $(STAMP) lint typecheck docs browser
	$(BIN)/pytest -q -n 3 --dist worksteal -p no:cacheprovider

# The inner loop (under a minute): unit tests and the SQLite half of the integration tests,
# without the ones that start processes or run long (marked slow; `make test` runs them all).
test-fast: $(STAMP)
	$(BIN)/pytest -q -n 2 -p no:cacheprovider -m "not slow and not postgres" -k "not postgres" \
		tests/unit tests/integration

# The API docs' browser test drives Debian's chromium (never a downloaded browser): installed
# here when missing and this is root with apt-get; else that test skips, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is not installed: the browser tests will skip"

# The documentation site (docs/, mkdocs.yml) into site/: --strict turns a broken link or
# page into a failure. The banner Material prints is about MkDocs 2.0; we pin 1.6.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The reference pages and .env.example, generated from the code (a test fails when a
# committed one is stale).
# A picture of each page of the web UI for its guide (needs chromium: `make browser`).
docs-screenshots: $(STAMP) browser
	$(BIN)/python -m tests.support.screenshots docs/images/ui

docs-reference: $(STAMP)
	$(BIN)/python -m modelledger.reference

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m bench.commands

# Read side (docs/benchmarks.md): e.g. `make bench-read EVENTS=50000 BENCH_READ_ARGS="--duration 3"`
EVENTS ?= 1000000
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
BENCH_READ_ARGS ?=
bench-read: $(STAMP)
	$(BIN)/python -m bench.projections --events $(EVENTS) --pg-url $(PG_URL) \
		--json var/bench-read.json $(BENCH_READ_ARGS)

# ModelLedger and MLflow side by side (docs/benchmarks.md): about 30 minutes; installs MLflow
# into bench/.mlflow/venv on first use. E.g. `make bench-mlflow MLFLOW_ARGS="--sizes 10000 --repeat 1"`
MLFLOW_ARGS ?=
bench-mlflow: $(STAMP)
	$(BIN)/python -m bench.vs_mlflow --pg-url $(PG_URL) $(MLFLOW_ARGS)

# `modelledger migrate mlflow` from a seeded MLflow into both stores (docs/benchmarks.md): about
# 11 minutes at 10,000 models x 3 versions; installs MLflow into bench/.mlflow/venv on first use.
# E.g. `make bench-migrate MIGRATE_ARGS="--models 200 --stores sqlite"`
MIGRATE_ARGS ?=
bench-migrate: $(STAMP)
	$(BIN)/python -m bench.mlflow_import --pg-url $(PG_URL) $(MIGRATE_ARGS)

# GraphQL against REST on the same reads, side by side (docs/benchmarks.md): about 15 minutes
# at 100,000 models. E.g. `make bench-graphql MODELS=2000 BENCH_GRAPHQL_ARGS="--duration 5"`
MODELS ?= 100000
BENCH_GRAPHQL_ARGS ?=
bench-graphql: $(STAMP)
	$(BIN)/python -m bench.graphql --models $(MODELS) --database-url $(PG_URL) $(BENCH_GRAPHQL_ARGS)

clean:
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
