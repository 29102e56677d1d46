# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: env demo test ui stop bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/manager-pipeline setup
	touch $(STAMP)

env: $(STAMP)

demo: env
	$(BIN)/manager-pipeline run --source example --env staging

test: env
	$(BIN)/python -m pytest

ui: env
	$(BIN)/manager-pipeline ui

stop:
	@if [ -x $(BIN)/manager-pipeline ]; then $(BIN)/manager-pipeline stop; fi

bench: env
	$(BIN)/python bench/overhead.py

clean: stop
	rm -rf .manager
