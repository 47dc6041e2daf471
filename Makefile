# The two commands: `make demo` runs the platform, `make test` runs the whole test suite.
# Both create the virtual environment from the lock file when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install demo test lint format validate bench bench-ingest bench-transform lock clean

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/latam demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

validate: install
	env -u DAGSTER_HOME $(BIN)/dagster definitions validate -m latam_dagster.definitions

test: install lint validate
	$(BIN)/pytest -q -p no:cacheprovider

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: bench-ingest bench-transform

bench-ingest: install
	$(BIN)/python -m bench.ingest

bench-transform: install
	$(BIN)/python -m bench.transform

# Re-resolve pinned versions after editing pyproject.toml dependencies.
lock: install
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
