# The two commands of the README: `make test` (the plugin's own tests) and `make perf` (the ResNet50
# suite on the default backend). Each sets up what it needs, idempotently.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LOCK := pytest_tfserving/images/runtime-lock.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: test perf baselines setup venv redis engine images lint clean

setup: venv redis

# Runtime dependencies are installed at the versions of $(LOCK), the same ones the stand-in image
# runs; `python -m pytest_tfserving.images lock` refreshes it after a deliberate upgrade.
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (apt-get install python3.11 python3.11-venv) or run make PYTHON=python3"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev,plots,gpu,locust]'
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

redis:
	@command -v redis-server >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing redis-server from Debian"; \
	  (apt-get install -y -qq redis-server >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null)); \
	else \
	  echo "error: redis-server is missing; install it with: sudo apt-get install redis-server"; exit 1; \
	fi

# Container tests need an engine: scripts/container-engine.sh finds Docker or, as root on Debian,
# sets up Podman's Docker API; the stand-in images are built when missing (skipped when present).
test: setup
	@eval "$$(scripts/container-engine.sh)"; \
	if [ -n "$${DOCKER_HOST:-}" ] || [ -S /var/run/docker.sock ]; then \
	  $(PY) -m pytest_tfserving.images build || { \
	    echo "stand-in image build failed: container tests will skip (or fail where required)"; \
	    [ "$${PYTEST_TFSERVING_REQUIRE_CONTAINERS:-0}" = 1 ] && exit 1; true; }; \
	fi; \
	$(PY) -m pytest tests $(PYTEST_ARGS)

perf: setup
	set -o pipefail; $(PY) -m pytest perf_suites -m perf --perf-report-md reports/perf.md --perf-report-json reports/perf.json $(PYTEST_ARGS)

# Record the suite's baselines with a run history: RUNS separate sessions (each starts its own
# servers), so the gate can test a PR's run against run-to-run drift (docs/GATE.md, "Run history").
RUNS ?= 5
baselines: setup
	set -o pipefail; for i in $$(seq $(RUNS)); do echo "== baseline run $$i of $(RUNS)"; \
	  $(PY) -m pytest perf_suites -m perf --update-baselines $(PYTEST_ARGS) || exit $$?; done

lint: venv
	$(VENV)/bin/ruff check pytest_tfserving tests perf_suites benchmarks
	$(VENV)/bin/mypy pytest_tfserving

clean:
	rm -rf $(VENV) .tfserving-cache reports .pytest_cache
