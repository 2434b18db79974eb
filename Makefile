# The two commands: `make demo` runs energyhub on embedded defaults, `make test` runs the test suite
# (minutes); `make test-system` runs the long system scenarios (CI runs both, .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
URLLIB3_PIN := >=2.2,<3

.PHONY: demo test test-system test-fast lint docs services bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,feeds,docs]'
	# urllib3-future (niquests, under grafana-client) installed as a wheel overwrites urllib3 in
	# place, which breaks requests and so the schemathesis command line: built from source with
	# URLLIB3_NO_OVERRIDE it keeps to its own name, and urllib3 is put back
	future=$$($(BIN)/pip show urllib3-future 2>/dev/null | sed -n 's/^Version: //p'); \
	if [ -n "$$future" ]; then \
		URLLIB3_NO_OVERRIDE=1 $(BIN)/pip install --quiet --force-reinstall --no-deps \
			--no-binary urllib3-future "urllib3-future==$$future" && \
		$(BIN)/pip install --quiet --force-reinstall --no-deps "urllib3$(URLLIB3_PIN)"; \
	fi
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
test: $(INSTALLED) services lint docs
	$(BIN)/pytest -n 2 --dist loadgroup -m "not system and not timed" --durations=25

# The long scenarios, one after another: each has deadlines in real or simulated time.
test-system: $(INSTALLED) services
	$(BIN)/pytest -m "system or timed" --durations=0

test-fast: $(INSTALLED) services
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow and not system and not timed"

docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # not --quiet: it hides the warnings --strict counts

bench: $(INSTALLED)
	bash scripts/services.sh bench
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site
