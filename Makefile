# The two commands: `make demo` runs the platform, `make test` runs the whole test suite.
# Both create the virtual environment from the lock file when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install bytecode tools demo test test-ui test-ha fuzz audit check-monitoring lint format validate bench bench-ingest bench-transform bench-quality bench-api bench-freshness lock clean validate-infra validate-infra-tools validate-k8s checkov-lock

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
	$(BIN)/bandit -q -c pyproject.toml -r latam_dagster api_service --severity-level medium
	$(MAKE) -s lint-images

# known vulnerabilities of the locked dependencies (pip-audit); says which packages it could not
# look up when the vulnerability database is out of reach
audit: install
	$(BIN)/python infra/ci/audit.py

validate: install
	env -u DAGSTER_HOME $(BIN)/dagster definitions validate -m latam_dagster.definitions

# the whole suite, the container images' smoke test included (`images` builds them first: 3 to 7
# minutes on a new machine, under a minute once cached)
test: install bytecode lint validate validate-infra-tools validate-k8s images
	$(BIN)/pytest -q -p no:cacheprovider

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Offline validators of the containers, CI/CD and Terraform (docs/deploy.md): dclint and
# podman-compose on infra/compose/compose.yaml, actionlint (with shellcheck) and yamllint on the
# workflows, shellcheck on the compose scripts, terraform fmt, checkov on the workflows and on
# infra/terraform once with each environment's values (environments/*.tfvars). `make test` runs
# these, and its pytest run holds tests/infra (the compose and Terraform assertions); `make validate-infra` runs both alone. dclint comes from npm
# (infra/compose/package-lock.json), checkov from its own lock in a venv of its own.
CHECKOV_VENV := $(VENV)/tools/checkov
COMPOSE_DIR := infra/compose

$(COMPOSE_DIR)/node_modules/.installed: $(COMPOSE_DIR)/package.json $(COMPOSE_DIR)/package-lock.json
	npm ci --prefix $(COMPOSE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_VENV)/.installed: infra/terraform/checkov.lock | $(BIN)/.installed
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(BIN)/uv pip sync -q --python $(CHECKOV_VENV)/bin/python infra/terraform/checkov.lock
	touch $@

validate-infra-tools: install $(COMPOSE_DIR)/node_modules/.installed $(CHECKOV_VENV)/.installed
	cd $(COMPOSE_DIR) && npx --no-install dclint --max-warnings 0 compose.yaml
	$(BIN)/podman-compose --dry-run -f $(COMPOSE_DIR)/compose.yaml config >/dev/null
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/actionlint
	$(BIN)/yamllint -s .yamllint.yaml .github/workflows $(COMPOSE_DIR)/compose.yaml 		$(COMPOSE_DIR)/dagster $(COMPOSE_DIR)/loki $(COMPOSE_DIR)/prometheus $(COMPOSE_DIR)/promtail
	$(BIN)/shellcheck $(COMPOSE_DIR)/*.sh $(COMPOSE_DIR)/*/*.sh
	@if command -v terraform >/dev/null; then \
		TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive infra/terraform && echo "terraform fmt: ok"; \
	else echo "terraform fmt: skipped, terraform is not installed (python-hcl2 still parses every file)"; fi
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -d .github/workflows \
		--framework github_actions
	for vars in infra/terraform/environments/*.tfvars; do \
		echo "checkov: infra/terraform with $$vars"; \
		$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -d infra/terraform \
			--framework terraform --var-file "$$vars" || exit 1; \
	done

validate-infra: validate-infra-tools validate-k8s
	$(BIN)/pytest -q -p no:cacheprovider tests/infra

# Kubernetes manifests (infra/k8s, docs/deploy.md "Kubernetes manifests"): every overlay rendered
# by `kubectl kustomize` into .build/k8s, its core objects checked by kubernetes-validate --strict
# against the bundled API schemas of K8S_VERSION (the operators' CRDs are skipped by name, with
# the reason, in infra/k8s/validate.py), then checkov on the rendered files (skips and reasons in
# infra/k8s/.checkov.yaml). tests/infra/test_k8s_manifests.py runs in the pytest run.
K8S_VERSION ?= 1.33.0

validate-k8s: install $(CHECKOV_VENV)/.installed
	$(BIN)/yamllint -s .yamllint.yaml infra/k8s
	$(BIN)/python infra/k8s/validate.py --out .build/k8s --kubernetes-version $(K8S_VERSION)
	$(CHECKOV_VENV)/bin/checkov --config-file infra/k8s/.checkov.yaml -d .build/k8s

# Re-resolve checkov's pins after changing infra/terraform/checkov.in.
checkov-lock: install
	$(BIN)/uv pip compile -q infra/terraform/checkov.in --python-version 3.11 -o infra/terraform/checkov.lock

# Container images (docs/deploy.md "Images"): latam/platform, one image for every process, built
# with podman on the platform's own Debian base (debootstrap, no registry). `make images` installs
# podman/runc/debootstrap when missing, builds the base once, then the image (cached layers),
# and prints the times and sizes. `make test-images` runs the platform in containers against
# this machine's Postgres, RabbitMQ and Redis (tests/images). `make images-clean` removes the
# images, their layer cache and .build/images.
.PHONY: images test-images lint-images images-clean

images:
	UV_VERSION=$(UV_VERSION) bash infra/images/build.sh

test-images: install lint-images images
	$(BIN)/pytest -q -s -p no:cacheprovider tests/images

lint-images: install
	find . \( -path ./.venv -o -path ./.build -o -path ./.git -o -name node_modules \) -prune -o \
		\( -name 'Dockerfile*' -o -name 'Containerfile*' \) -type f -print0 \
		| xargs -0 -r $(BIN)/hadolint
	$(BIN)/shellcheck -x infra/images/*.sh

images-clean:
	bash infra/images/clean.sh

# Long property-based fuzzing of the drain on the real broker and warehouse: the fuzz tests that
# `make test` runs bounded (fixed seed, 60 examples), here with LATAM_FUZZ_EXAMPLES examples from
# a random seed and shrinking to minimal failing examples. LATAM_FUZZ_SEED=<n> repeats a run.
LATAM_FUZZ_EXAMPLES ?= 1000
fuzz: install
	LATAM_FUZZ_EXAMPLES=$(LATAM_FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider --timeout=0 \
		--tb=short --show-capture=stdout -m fuzz tests/integration

# Failover and disaster-recovery drills on this machine (docs/scaling.md): a 3-node RabbitMQ
# cluster losing each queue's leader to kill -9, a Postgres primary lost to its streaming replica,
# and a point-in-time restore from a base backup and the WAL archive. Each test starts and stops its
# own processes on loopback and prints its figures; `make test` runs them too.
test-ha: install
	$(BIN)/pytest -q -p no:cacheprovider -s -m ha tests/ha

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
	$(BIN)/uv pip compile -q pyproject.toml --python-version 3.11 -c requirements.lock \
		-o infra/images/requirements-runtime.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
