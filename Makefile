# The two commands: `make demo` runs the platform, `make test` runs the whole test suite.
# Both create the virtual environment from the lock file when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install bytecode tools demo test test-ui fuzz check-monitoring lint format validate bench bench-ingest bench-transform bench-quality bench-api bench-freshness lock clean

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	$(MAKE) -s bytecode
	touch $@

# Every Dagster run is a new Python process, and run workers start with `python -B`, which never
# writes bytecode: without compiled files each run would compile Dagster (and each check run
# Great Expectations) from source, several seconds of CPU per run. uv does not compile by default.
bytecode:
	$(BIN)/python -m compileall -q latam_dagster api_service

install: $(BIN)/.installed

# system tools for the monitoring and browser tests (Debian packages; RabbitMQ management plugin)
tools:
	bash infra/ci/install-tools.sh

demo: install bytecode
	$(BIN)/latam demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

validate: install
	env -u DAGSTER_HOME $(BIN)/dagster definitions validate -m latam_dagster.definitions

test: install bytecode lint validate
	$(BIN)/pytest -q -p no:cacheprovider

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Long property-based fuzzing of the drain on the real broker and warehouse: the fuzz tests that
# `make test` runs bounded (fixed seed, 60 examples), here with LATAM_FUZZ_EXAMPLES examples from
# a random seed and shrinking to minimal failing examples. LATAM_FUZZ_SEED=<n> repeats a run.
LATAM_FUZZ_EXAMPLES ?= 1000
fuzz: install
	LATAM_FUZZ_EXAMPLES=$(LATAM_FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider --timeout=0 \
		--tb=short --show-capture=stdout -m fuzz tests/integration

check-monitoring: tools
	cd infra/prometheus && promtool check config prometheus.yml && promtool check rules rules/*.yml && promtool test rules tests/*.yml

test-ui: install tools
	$(BIN)/pytest -q -p no:cacheprovider -m e2e tests/e2e

bench: bench-ingest bench-transform bench-quality bench-api

bench-quality: install
	$(BIN)/python -m bench.quality

bench-api: install
	$(BIN)/python -m bench.api

bench-freshness: install bytecode tools
	$(BIN)/python -m bench.freshness

bench-ingest: install
	$(BIN)/python -m bench.ingest

bench-transform: install
	$(BIN)/python -m bench.transform

# Re-resolve pinned versions after editing pyproject.toml dependencies.
lock: install
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
