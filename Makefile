# The README's commands. `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python
# Both locks pin every distribution with its hashes, for Python 3.11 (the image's and Debian 12's).
# --native-tls: the system's CA store, so an intercepting proxy's certificate is trusted.
UV_COMPILE := .venv/bin/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
	--native-tls --custom-compile-command "make lock"
# The cluster runs PostgreSQL and PgBouncer as the postgres user, so it needs root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help install venv up down status test test-unit lint format lock image logs bench

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

install: ## install missing Debian packages and the virtualenv (.venv)
	@$(SUDO) bash deploy/local/install.sh

venv: ## only the virtualenv (.venv from requirements-dev.lock): no root, no Debian packages
	@bash deploy/local/install.sh --venv-only

up: install ## start the local cluster (safe to run twice) and print its URLs
	@$(SUDO) $(PY) -m deploy.local.cluster up

down: ## stop every process the cluster started
	@if [ -x $(PY) ]; then $(SUDO) $(PY) -m deploy.local.cluster down; fi

status: ## one line per cluster process: pid, port, and each PostgreSQL member's, broker Redis node's and edge's role
	@$(SUDO) $(PY) -m deploy.local.cluster status

test: install ## ruff, mypy, lint-imports and the whole pytest suite, on the running (or started) cluster
	@$(SUDO) $(PY) -m deploy.local.cluster up
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports
	TESTS_REQUIRE_PROGRAMS=1 .venv/bin/pytest $(PYTEST_ARGS)

test-unit: venv ## the tests that need no services (marker unit): no root, nothing started
	.venv/bin/pytest -m unit $(PYTEST_ARGS)

lint: venv ## ruff, mypy and the import contracts (lint-imports) only (no root, nothing started)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports

format: install ## rewrite the code with ruff's formatter and fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

lock: venv ## resolve pyproject.toml into requirements.lock (runtime) and requirements-dev.lock, with hashes
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra dev --extra bench -c requirements.lock -o requirements-dev.lock

image: install ## build the container image (Dockerfile) with buildah, no daemon or registry (IMAGE=, IMAGE_BASE=)
	@$(SUDO) IMAGE="$(IMAGE)" IMAGE_BASE="$(IMAGE_BASE)" bash deploy/image/build.sh

logs: ## follow every cluster log (ID=<request id>: that request's lines in NGINX's and the app's logs)
	@if [ -n "$(ID)" ]; then grep -H -- "$(ID)" .cluster/logs/*.log; else tail -n 20 -F .cluster/logs/*.log; fi

bench: install ## load test: baselines, /health, the API, 64 and 5,000 connections, then 10 minutes with each component killed once; writes bench/report.md (QUICK=1: seconds; SCALE=phase2: 5,000,000 messages and the Sunday burst)
	@$(SUDO) $(PY) -m deploy.local.cluster up
	@$(SUDO) $(PY) -m $(if $(filter phase2,$(SCALE)),bench.phase2,bench.run $(if $(QUICK),--quick))
	@$(if $(filter phase2,$(SCALE)),,$(SUDO) $(PY) -m bench.availability $(if $(QUICK),--quick))
