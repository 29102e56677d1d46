# Two commands do everything on a fresh machine: `make demo` and `make test`.
# `make check` runs the unit tests only (no process, no network; well under a minute).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: env browser demo check test durations ui stop bench generate clean

# The install steps live in scripts/install.sh, shared with deploy/Containerfile (which passes --no-test):
# a venv, `uv pip install -e '.[test]'` (uv from PyPI), `manager-pipeline setup` (Terraform launcher, provider mirror).
$(STAMP): pyproject.toml manager_pipeline/policy/install.py
	PYTHON='$(PYTHON)' sh scripts/install.sh --venv '$(VENV)'
	touch $(STAMP)

env: $(STAMP)

# The UI tests render the Dagster UI in Debian's Chromium (the tests need it, the demo does not).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the UI tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

demo: env
	$(BIN)/manager-pipeline run --source example --env staging

# tests/unit: no subprocess, no network. tests/integration: real processes, Terraform, moto, the stand-ins.
# The integration tests mostly wait (on the AWS provider's own polling, on the daemon's ticks), so
# six workers share the two cores well; each module stays on one worker (its fixtures are per module).
check: env
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest tests/unit -q

# Their scratch (Dagster's SQLite files, Terraform's working folders, plan stores) on the machine's RAM disk
# when it has one: Dagster writes each event of a run in a SQLite commit of its own, and on a busy disk the
# commit's fsync costs more than the event. One folder a checkout (pytest empties it as it starts).
TEST_TMP ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm/manager-pipeline-tests-$$(id -u)-$(notdir $(CURDIR)))

# Byte-code caches on for the run, whatever the shell says (PYTHONDONTWRITEBYTECODE=1 here): without them every
# process of the suite (some 300 import the manager) compiled the manager's 157 modules again, ~0.15 s each,
# and each worker re-wrote the asserts of every test module as it collected them.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest tests -n 6 --dist loadscope $(if $(TEST_TMP),--basetemp=$(TEST_TMP))

# The modules go to the workers costliest first, by tests/durations.json (tests/scheduling.py).
test: env browser
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q manager_pipeline
	$(PYTEST) --durations=15

# The whole suite, rewriting tests/durations.json from its times (commit it when the suite changed).
durations: env browser
	$(PYTEST) --store-durations

ui: env
	$(BIN)/manager-pipeline ui

stop:
	@if [ -x $(BIN)/manager-pipeline ]; then $(BIN)/manager-pipeline stop; fi

# terraform/sections.tf, schema/variables.schema.json and docs/contract.md's field table, from the schema.
generate: env
	$(BIN)/python -m manager_pipeline.contract.generated

bench: env
	$(BIN)/python bench/overhead.py

clean: stop
	rm -rf .manager
