# One entry point for people and CI. `make test` works on a fresh Debian machine: it finds
# Python 3.12, creates .venv, installs the pinned dependencies, then lints, type-checks,
# validates the template and runs every test.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := $(VENV)/tools/checkov
export PATH := $(CURDIR)/$(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
# Where every Python process of the project finds its modules (devtools/project.py lists the same).
export PYTHONPATH := $(CURDIR)/layers/wechat_core:$(CURDIR)/simulator:$(CURDIR)
PY_SOURCES := layers functions simulator tests bench scripts devtools

.PHONY: help venv lint format typecheck validate test unit integration e2e events bench clean

help:
	@echo "make test       lint, type checks, template validation and all tests (fresh machine ok)"
	@echo "make local      run the whole stack locally (moto, WeChat simulator, sam local start-api)"
	@echo "make events     regenerate events/ for sam local invoke"
	@echo "make bench      benchmarks under bench/ (pushes vs a wechatpy handler, cold start, refresher)"
	@echo "make fuzz       fuzz the push parsing and crypto for FUZZ_SECONDS (600; random seeds)"

# checkov's pins conflict with ours (requirements-checkov.txt says which): it gets a venv of its own.
$(BIN)/.installed: requirements-dev.txt requirements-checkov.txt layers/wechat_core/requirements.txt
	@command -v make >/dev/null
	test -x $(BIN)/python || "$$(scripts/find-python.sh)" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	test -x $(CHECKOV_VENV)/bin/python || $(BIN)/python -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade "pip==26.3"
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
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
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

test: venv lint typecheck
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest -m unit

integration: venv
	$(BIN)/pytest -m integration

# The atheris target over envelope parsing, signatures, decryption and the typed parsers
# (tests/fuzz/), from the committed seeds. New inputs and findings go to tests/fuzz/work/ (not in
# git; kept between runs). `make test` runs 100,000 inputs from a fixed seed (tests/unit/test_fuzz_protocol.py).
.PHONY: fuzz
FUZZ_SECONDS ?= 600
fuzz: venv
	$(BIN)/python -m tests.fuzz.run --seconds $(FUZZ_SECONDS)

events: venv
	$(BIN)/python scripts/make_events.py

bench: venv
	$(BIN)/python bench/push_bench.py
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/crypto_bench.py
	$(BIN)/python bench/refresher_bench.py
	$(BIN)/python bench/release_bench.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

# --- sam local: the whole stack on this machine (devtools/, python -m devtools) -----------------
.PHONY: engine local demo

# A container engine for sam local (Docker, Finch, else podman set up here) and the Lambda
# python3.12 base image (pulled, else built offline). Last line: DOCKER_HOST=... for `export`.
engine: venv
	@line="$$(scripts/container-engine.sh | tail -n 1)" && export "$$line" && \
		scripts/lambda-base-image.sh >/dev/null && echo "$$line"

# sam build + sam local start-api (warm containers), moto, the WeChat simulator; Ctrl-C stops all.
local: venv
	$(BIN)/python -m devtools

# A walk through the product against the stack `make local` runs (in another terminal).
demo: venv
	$(BIN)/python -m devtools.demo

# The real handlers in Lambda containers (they also run in `make test`: pytest collects tests/e2e).
e2e: venv
	$(BIN)/pytest -m e2e
