# The two commands: `make demo` runs energyhub on embedded defaults, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-fast lint docs services bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,feeds,docs]'
	$(BIN)/pip install --quiet --no-deps citylearn==2.1.2 pvanalytics==0.2.2
	touch $(INSTALLED)

demo: $(INSTALLED)
	bash scripts/services.sh install
	$(BIN)/energyhub demo $(DEMO_ARGS)

services:
	bash scripts/services.sh

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check energyhub simulators
	$(BIN)/mypy

test: $(INSTALLED) services lint docs
	$(BIN)/pytest -n 2 --dist loadgroup

test-fast: $(INSTALLED) services
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow"

docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # not --quiet: it hides the warnings --strict counts

bench: $(INSTALLED)
	bash scripts/services.sh bench
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site
