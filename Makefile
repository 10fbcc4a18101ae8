# make run    the embedded demo (SQLite, no services) on http://127.0.0.1:8000
# make test   the whole suite; PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set
# make lint   ruff check, ruff format --check, the import contracts (lint-imports) and the
#             structure report (scripts/structure.py)
# make bench  the ingestion benchmark (bench/ingest.py; needs PostgreSQL and Redis)
#
# Only python3 is needed: the virtual environment is created on first use, and the pinned
# requirements are installed again only when a requirements file changed since.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# CPython 3.11 for the virtual environment: the system's own build first when there is one, since
# distributions build it with PGO and LTO (Debian's runs this project ~35% faster than a plain
# source build such as pyenv's; see docs/performance.md). Override with PYTHON=/path/to/python3.11.
PYTHON ?= $(shell for candidate in /usr/bin/python3.11 python3.11 python3; do \
	if $$candidate -c 'import ensurepip, sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
	command -v $$candidate; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements/base.txt requirements/dev.txt
INSTALLED := $(VENV)/.installed-requirements
VAR_DIR ?= $(CURDIR)/var
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USERS ?= 3000
PYTEST_ARGS ?= -q
BENCH_ARGS ?=

# uvicorn as config/serve.py configures it: no Server header, and X-Forwarded-For read only when
# DJANGO_TRUST_X_FORWARDED_FOR is on (the setting django-axes' lockout follows too).
UVICORN_FLAGS := --no-server-header $(if $(filter 1 true on yes y ok,$(shell echo '$(DJANGO_TRUST_X_FORWARDED_FOR)' | tr A-Z a-z)),--proxy-headers,--no-proxy-headers)

# Where the server answers, for the links it sends out (click tracking, unsubscribe, callbacks):
# the HOST and PORT it serves on, unless given (make run PUBLIC_BASE_URL=https://...).
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
# The embedded default: SQLite in VAR_DIR, jobs in-process, in-memory channel layer and cache.
EMBEDDED := env -u DATABASE_URL -u REDIS_URL VAR_DIR=$(VAR_DIR) DJANGO_DEBUG=1 PUBLIC_BASE_URL=$(PUBLIC_BASE_URL)

.PHONY: help venv run test lint bench

help:
	@echo "make run    migrate, seed the demo workspace and serve http://$(HOST):$(PORT) (SQLite)"
	@echo "make test   the whole suite (PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set)"
	@echo "make lint   ruff check and format, import contracts (lint-imports), structure report"
	@echo "make bench  the ingestion benchmark, bench/ingest.py"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(REQUIREMENTS) | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -r requirements/dev.txt
	touch $@

venv: $(INSTALLED)

run: venv
	@mkdir -p $(VAR_DIR)
	@echo "==> migrating the SQLite database in $(VAR_DIR)"
	$(EMBEDDED) $(BIN)/python manage.py migrate --no-input -v 0
	$(EMBEDDED) $(BIN)/python manage.py collectstatic --no-input -v 0
	@echo "==> seeding the demo workspace"
	$(EMBEDDED) $(BIN)/python manage.py seed_demo --users $(DEMO_USERS)
	@echo "==> serving admin, API and websocket on http://$(HOST):$(PORT) (Ctrl-C stops)"
	exec $(EMBEDDED) $(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --lifespan on $(UVICORN_FLAGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/structure.py

bench: venv
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)
