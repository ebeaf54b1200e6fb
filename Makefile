# mcpcontrol: `make run` serves the console, API, worker and beat; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:
.SHELLFLAGS := -ec

# A Python 3.12+ interpreter: the first candidate that actually runs (pyenv shims may exist
# and still fail), then any pyenv-installed 3.12+.
PYTHON_CANDIDATES := python3.13 python3.12 python3 $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.1[2-9]*/bin/python)
PYTHON := $(firstword $(foreach c,$(PYTHON_CANDIDATES),$(shell $(c) -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && echo $(c))))
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The bundled demo MCP server (mcpcontrol/demo/mcp_server.py), streamable HTTP on loopback.
DEMO_MCP_PORT ?= 8790
# mypy's Django plugin imports the settings, which need keys: reuse the suite's fixed test ones.
MYPY := $(BIN)/python -c 'import tests.pytest_env, mypy.main; mypy.main.main(args=[], clean_exit=True)'
# Security and fault scenarios (docs/security.md) start real processes (Redis, gunicorn, a
# Celery worker) and break them on purpose: slow, so `make test-security` runs them, not
# `make test`. Mark new ones with one of these pytest markers (e.g. "faults or leaks").
SECURITY_MARKERS := faults
# The cluster scenario (tests/cluster): two web processes, two Celery workers and beat on one
# PostgreSQL (DATABASE_URL, where it creates and drops a database) and a Redis it starts.
CLUSTER_MARKERS := cluster
# MongoDB (docs/storage.md): with MONGO_URI set, a real MongoDB 7+; otherwise the SecantusDB
# emulator from PyPI, started by the test setup (tests/mongo_emulator.py) on an ephemeral port.
# The whole suite runs there (about 17 min on 2 cores); tests marked sql_only (raw SQL, SQL-only
# tooling) or emulator_gap (an emulator bug, tests/gaps.py) are skipped with their reasons
# (docs/storage.md). MONGO_TESTS=<paths> runs a part.
MONGO_TESTS ?=

.PHONY: help run test test-security test-cluster test-mongo lint format check-python bench bench-deps clean system-deps venv

help:
	@echo "make run   - set up and serve http://$(HOST):$(PORT)/admin/ with worker and beat"
	@echo "make test  - install test needs and run the whole suite"
	@echo "make test-security - security and fault scenarios (slow; real Redis, gunicorn, Celery)"
	@echo "make test-cluster - several web/worker/beat processes agreeing (3-4 min; DATABASE_URL=postgres://...)"
	@echo "make test-mongo - the whole suite on MongoDB (MONGO_URI, or a SecantusDB emulator it starts)"
	@echo "make lint  - ruff check and format check, mypy --strict"
	@echo "make bench-deps - ContextForge in .run/contextforge-venv, for bench/gateway_bench.py"

check-python:
	@if [ -z "$(PYTHON)" ]; then
	  echo "make: no Python 3.12+ found (tried: $(PYTHON_CANDIDATES))." >&2
	  echo "Install Python 3.12 or newer (e.g. 'pyenv install 3.12' or your OS package) and retry." >&2
	  exit 1
	fi

$(BIN)/.installed: requirements.txt requirements-dev.txt | check-python
	@if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
	  echo "installing dependencies (first run, ~1 min)..."
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	else
	  echo "updating dependencies (requirements changed)..."
	fi
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(BIN)/.installed

run: $(BIN)/.installed
	@export DJANGO_DEBUG=$${DJANGO_DEBUG:-1}
	mkdir -p .run && : >.run/setup.log
	# Each step's output goes to .run/setup.log and is shown only when the step fails.
	step() { echo "$$1"; shift; "$$@" >>.run/setup.log 2>&1 || { tail -n 40 .run/setup.log >&2; exit 1; }; }
	step "migrating..." $(BIN)/python manage.py migrate --noinput
	step "loading the demo data..." $(BIN)/python manage.py load_demo
	$(BIN)/python manage.py ensure_admin  # prints a generated password once: keep it visible
	step "scheduling the periodic checks..." $(BIN)/python manage.py ensure_schedules
	rm -rf .run/prometheus  # the previous run's metrics (prometheus_client multiprocess files)
	# Stop everything with the server; reset the trap first so kill 0 does not re-trigger it.
	trap 'trap - EXIT INT TERM; kill 0' EXIT INT TERM
	$(BIN)/python -m mcpcontrol.demo.mcp_server --port $(DEMO_MCP_PORT) >.run/demo-mcp.log 2>&1 &
	$(BIN)/celery -A mcpcontrol worker --loglevel=INFO --concurrency=2 >.run/worker.log 2>&1 &
	$(BIN)/celery -A mcpcontrol beat --loglevel=INFO --pidfile= >.run/beat.log 2>&1 &
	echo "worker, beat and the demo MCP server (http://127.0.0.1:$(DEMO_MCP_PORT)/mcp) log to .run/"
	echo "serving at http://$(HOST):$(PORT)/admin/ (API docs: http://$(HOST):$(PORT)/api/docs/)"
	# ASGI: Django and the MCP gateway (/mcp/agents/<id>) in gunicorn's uvicorn workers.
	$(BIN)/gunicorn mcpcontrol.asgi --worker-class uvicorn_worker.UvicornWorker --bind $(HOST):$(PORT)

# Chromium drives the browser tests; install it from Debian when we may (root with apt).
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
	  else
	    echo "make test: chromium/chromedriver missing and cannot install them; browser tests will be skipped" >&2
	  fi
	fi

test: $(BIN)/.installed system-deps $(if $(wildcard package.json),node_modules/.installed)
	$(BIN)/ruff check .
	$(MYPY)
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered --cov-fail-under=90 -m "not ($(SECURITY_MARKERS) or $(CLUSTER_MARKERS))" $(PYTEST_ARGS)

test-security: $(BIN)/.installed
	$(BIN)/python -m pytest -m "$(SECURITY_MARKERS)" $(PYTEST_ARGS)

test-cluster: $(BIN)/.installed
	$(BIN)/python -m pytest tests/cluster -m "$(CLUSTER_MARKERS)" $(PYTEST_ARGS)

test-mongo: $(BIN)/.installed
	MCPCONTROL_TEST_MONGO=emulator $(BIN)/python -m pytest -p tests.mongo_emulator \
	  -m "not ($(SECURITY_MARKERS) or $(CLUSTER_MARKERS) or browser)" $(MONGO_TESTS) $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(MYPY)

format: $(BIN)/.installed
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# ContextForge, the gateway bench's comparison (bench/gateway_bench.py): its own virtualenv, as
# its pins (mcp, starlette, httpx) conflict with ours. Installed here, never at bench time.
CONTEXTFORGE_VENV := .run/contextforge-venv
CONTEXTFORGE := mcp-contextforge-gateway==1.1.0

$(CONTEXTFORGE_VENV)/.installed: | check-python
	rm -rf $(CONTEXTFORGE_VENV) && $(PYTHON) -m venv $(CONTEXTFORGE_VENV)
	$(CONTEXTFORGE_VENV)/bin/pip install --quiet --disable-pip-version-check '$(CONTEXTFORGE)'
	touch $@

bench-deps: $(CONTEXTFORGE_VENV)/.installed

bench: $(BIN)/.installed bench-deps
	$(BIN)/python bench/health_bench.py
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/gateway_bench.py
	$(BIN)/python bench/refresh_bench.py

clean:
	rm -rf $(VENV) node_modules .run db.sqlite3
