# One entry point for people and CI. `make test` works on a fresh Debian machine: it finds
# Python 3.12, creates .venv, installs the pinned dependencies, then lints, type-checks,
# validates the template and runs every test.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := $(CURDIR)/layers/wechat_core:$(CURDIR)/simulator
PY_SOURCES := layers functions simulator tests bench scripts

.PHONY: help venv lint format typecheck validate test unit integration e2e events bench clean

help:
	@echo "make test       lint, type checks, template validation and all tests (fresh machine ok)"
	@echo "make local      run the whole stack locally (moto, WeChat simulator, sam local start-api)"
	@echo "make events     regenerate events/ for sam local invoke"
	@echo "make bench      benchmarks under bench/"

$(BIN)/.installed: requirements-dev.txt layers/wechat_core/requirements.txt
	@command -v make >/dev/null
	test -x $(BIN)/python || "$$(scripts/find-python.sh)" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)

format: venv
	$(BIN)/ruff check --fix $(PY_SOURCES)
	$(BIN)/ruff format $(PY_SOURCES)

typecheck: venv
	$(BIN)/mypy

validate: venv
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint

test: venv lint typecheck
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest -m unit

integration: venv
	$(BIN)/pytest -m integration

events: venv
	$(BIN)/python scripts/make_events.py

bench: venv
	$(BIN)/python bench/crypto_bench.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
