# AskPro — see README.md. `make run` serves the demo; `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python
UV := .tools/bin/uv
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := .venv
export UV_PYTHON := $(shell command -v python3.11 || command -v python3)

.PHONY: install run test lint services browser test-postgres test-sqlite test-monitoring bench chaos clean

install: .venv/.installed

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

run: install
	scripts/run.sh

services:
	scripts/services.sh

# Debian's Chromium for the browser tests (tests/browser/), installed when missing.
browser:
	scripts/browser.sh

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

test-postgres: install services browser
	$(PY) -m pytest -n 2 --dist loadfile

# The same code on SQLite, without PostgreSQL: the quick subset marked `smoke`.
test-sqlite: install
	DATABASE_URL=sqlite:///$(CURDIR)/.run/smoke.sqlite3 $(PY) -m pytest -m smoke -q -p no:xdist

# Prometheus rules: promtool check + unit tests (installs Debian's promtool if missing).
test-monitoring:
	scripts/promtool.sh

test: lint test-monitoring test-postgres test-sqlite

# Benchmarks (not timed tests): gunicorn + wrk over loopback; see bench/README.md.
bench: install
	scripts/bench.sh $(BENCH_ARGS)

# Fault drills on a private PostgreSQL and Redis (never the shared ones); see bench/README.md.
chaos: install services
	$(PY) -m chaos.run $(CHAOS_ARGS)

clean:
	rm -rf .venv .tools .run db.sqlite3
