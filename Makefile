# The two commands: `make demo` runs energyhub on embedded defaults, `make test` runs the test suite
# (minutes); `make test-system` runs the long system scenarios (CI runs both, .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-system test-fast lint services bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,feeds]'
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

# Everything but the long scenarios (markers `system` and `timed`: tests/conftest.py), on two workers.
test: $(INSTALLED) services lint
	$(BIN)/pytest -n 2 --dist loadgroup -m "not system and not timed" --durations=25

# The long scenarios, one after another: each has deadlines in real or simulated time.
test-system: $(INSTALLED) services
	$(BIN)/pytest -m "system or timed" --durations=0

test-fast: $(INSTALLED) services
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow and not system and not timed"

bench: $(INSTALLED)
	bash scripts/services.sh bench
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
