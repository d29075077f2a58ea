# qmskpi: two commands do all the set-up on a fresh machine.
#   make demo   create the venv, install, find (or install) Chromium, render the pack from
#               sample_data/, print where it is (HTML only, and why, when no Chromium can be had)
#   make test   create the venv, install, find (or install) Chromium, poppler-utils, PostgreSQL,
#               run lint and the whole suite against a throwaway PostgreSQL, then remove it
#   make test-oldest        the fast tests against the OLDEST versions pyproject.toml allows
#                           (constraints-oldest.txt), in .venv-oldest; test-oldest-quick: the key
#                           tests only, what .ci/run adds after `make test`
# scripts/system-deps provides the system parts (it installs them as root with apt-get,
# otherwise prints the command for this platform); .ci/run uses it too.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SYSTEM := scripts/system-deps
export TZ := UTC
export GX_ANALYTICS_ENABLED := False

.PHONY: install demo test test-oldest test-oldest-quick lint format benchmark clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	@$(SYSTEM) demo
	$(BIN)/qmskpi demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: lint
	@$(SYSTEM) test
	$(SYSTEM) with-postgres $(BIN)/python -m pytest $(PYTEST_ARGS)

test-oldest:
	PYTHON=$(PYTHON) scripts/test-oldest $(PYTEST_ARGS)

test-oldest-quick:
	PYTHON=$(PYTHON) scripts/test-oldest --quick $(PYTEST_ARGS)

benchmark: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-oldest build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
