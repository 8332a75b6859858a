# One command to run the app, one to run every test. Each sets itself up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIRS := tests/node

.PHONY: setup run test check lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

tests/node/node_modules/.installed: tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed tests/node/node_modules/.installed

run: $(VENV)/.installed
	@echo "Demo document: ws://127.0.0.1:8000/ws/dpia/demo?token=$$($(BIN)/opendpia token --dpia demo --principal demo)"
	$(BIN)/opendpia serve

test: setup
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

check: lint typecheck test

bench: $(VENV)/.installed
	bash bench/run.sh

clean:
	rm -rf $(VENV) var tests/node/node_modules bench/node/node_modules
