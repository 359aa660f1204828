# One command runs the system locally (make demo), one runs every check (make test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is Python 3.12: use pyenv's 3.12 (or 3.13) when there is one, else python3.12.
PYTHON ?= $(shell for v in 3.12 3.13; do p=$$(pyenv prefix $$v 2>/dev/null) && [ -x "$$p/bin/python$$v" ] \
	&& { echo "$$p/bin/python$$v"; exit 0; }; done; command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export PYTHONPATH := $(CURDIR)/layers/common:$(CURDIR)
export AWS_DEFAULT_REGION ?= us-east-1
# The SAM CLI would otherwise print its telemetry notice and send usage data from every run.
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv lock demo up down test lint format validate build unit integration clean schemas bench-mail \
	bench-poll bench-cost bench-cli bench-fleet bench-push

help:
	@echo "make demo      run the whole system locally: servers, sample mails, poll, process, tickets"
	@echo "make up        start the local stack in the background (mail2ticket --local uses it); make down stops it"
	@echo "make test      install what is missing, lint, validate the template, run every test"
	@echo "make lint      ruff, ruff format --check, mypy"
	@echo "make validate  sam validate --lint: the SAM transform, then cfn-lint, on template.yaml"
	@echo "make build     sam build (Lambda artifacts under .aws-sam/)"
	@echo "make schemas   regenerate schemas/*.schema.json from the configuration models"
	@echo "make lock      re-resolve the three locks from their .in files (UPGRADE=1: newest versions allowed)"
	@echo "make bench-mail  reply extraction, malformed mail and parsing time on ../shared/corpus"
	@echo "make bench-poll  poll time of an inbox with 10,000 processed mails against an empty one"
	@echo "make bench-cost  1,000 mails through the local stack: AWS requests, memory, import time, cost"
	@echo "make bench-cli   start time of the mail2ticket command (--help, and a table command)"
	@echo "make bench-fleet the tick at 10 and 1,000 inboxes; 200 inboxes polled, 20 of them on a dead server"
	@echo "make bench-push  500 pushed mails: arrival to ticket (p50, p95), cost per 10,000 beside polling"

# Every environment installs from its lock only: exact versions, hashes checked, nothing resolved at install time.
# A changed lock rebuilds its environment from scratch, so a package the lock dropped does not linger.
PIP_LOCKED = -m pip install --quiet --require-hashes --no-deps --only-binary :all:

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_LOCKED) -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

# The SAM CLI pins its own boto3, so it lives in its own virtual environment.
$(SAM_VENV)/.installed: requirements-sam.txt
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python $(PIP_LOCKED) -r requirements-sam.txt
	touch $@

# The only way a version changes: re-resolve each lock from its .in file. Pins that still satisfy the inputs are
# kept; UPGRADE=1 takes the newest versions the inputs allow. The layer is resolved for Lambda (arm64, Python 3.12,
# wheels only); .venv is resolved for any platform and takes the layer's versions of the packages they share.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.12 $(if $(UPGRADE),--upgrade)

lock: venv
	$(UV_COMPILE) --python-platform aarch64-manylinux_2_28 --only-binary :all: \
		layers/common/requirements.in -o layers/common/requirements.txt
	$(UV_COMPILE) --universal -c layers/common/requirements.txt requirements-dev.in -o requirements-dev.txt
	$(UV_COMPILE) --universal requirements-sam.in -o requirements-sam.txt

demo: venv
	$(PY) -m infra.local.demo

# The local stack left running in the background; its details are in .local/stack.json.
up: venv
	$(PY) -m infra.local.background up

down:
	@if [ -x $(PY) ]; then $(PY) -m infra.local.background down; else echo "No local stack is running."; fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The SAM transform and cfn-lint on the template with push intake off (its default) and on (SES receiving).
# cfn-lint with the other parameter sets (recipients, an existing rule set, the S3 drop alone) runs in
# tests/unit/test_template_push.py: within `make test`, each runs once.
PUSH_ON := .aws-sam/template-push-on.yaml

validate: venv $(SAM_VENV)/.installed
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION)
	mkdir -p .aws-sam && sed 's/^    Default: none$$/    Default: ses/' template.yaml > $(PUSH_ON)
	grep -q 'Default: ses' $(PUSH_ON)
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION) --template $(PUSH_ON)

# sam build needs the runtime's Python (3.12) on PATH: $(PYTHON) is pyenv's. It runs the layer's and the
# functions' Makefiles: as make's grandchildren they would each say which directory they enter and leave.
build: $(SAM_VENV)/.installed
	PATH="$(dir $(PYTHON)):$$PATH" MAKEFLAGS=--no-print-directory $(SAM) build

test: lint validate build
	$(PY) -m pytest

bench-cost: venv
	$(PY) -m bench.cost

unit: venv
	$(PY) -m pytest tests/unit

integration: venv
	$(PY) -m pytest tests/integration tests/e2e

schemas: venv
	$(PY) -m mail2ticket.config.schema schemas

bench-poll: venv
	$(PY) -m bench.poll

bench-cli: venv
	$(PY) -m bench.cli

bench-fleet: venv
	$(PY) -m bench.fleet

bench-push: venv
	$(PY) -m bench.push

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache

# Reply extraction scores, malformed mail and parsing time on ../shared/corpus (or CORPUS=<path>).
bench-mail: venv
	$(PY) bench/mail.py
