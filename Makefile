# CRM dashboard task runner: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test unit e2e lint bench seed migrate clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP) ## Migrate, seed demo data on first start, serve the app on http://localhost:8501
	$(PY) -m crm prepare
	$(PY) -m streamlit run app.py --server.port 8501

test: $(STAMP) ## Run the whole suite (SQLite; also PostgreSQL when CRM_TEST_DATABASE_URL is set)
	$(PY) -m pytest

unit: $(STAMP) ## Run the tests without the browser tests
	$(PY) -m pytest -m "not e2e"

e2e: $(STAMP) ## Run only the browser tests (needs /usr/bin/chromium)
	$(PY) -m pytest -m e2e

lint: $(STAMP) ## Lint (ruff) and type-check crm/ (mypy)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(STAMP) ## Build or reuse the large database and print the SPEC §8 figures
	$(PY) -m crm bench --scale large --json data/bench/bench.json

migrate: $(STAMP) ## Apply database migrations (CRM_DATABASE_URL or data/crm.db)
	$(PY) -m crm migrate

seed: $(STAMP) ## Re-seed demo data into an empty database
	$(PY) -m crm seed --scale demo

clean: ## Remove the virtual environment and caches (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
