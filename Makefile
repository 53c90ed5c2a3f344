# Two commands a newcomer needs: `make dev` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test unit soak lint pytest redis browser install bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Redis for the tests: REDIS_URL if set; else 127.0.0.1:6379, started here if nothing answers there.
redis: $(STAMP)
	@$(BIN)/python -m devstack.redis_up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Headless Chromium and its driver for the console's browser test (Debian's packages): installed
# when missing, as root with apt-get; elsewhere a note, and the test is skipped (on CI it fails).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium and chromium-driver for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation \
	        >/dev/null; \
	  else \
	    echo "chromium and chromium-driver are missing and apt-get cannot install them here:" \
	      "the browser test will be skipped" >&2; \
	  fi; \
	fi

# pytest exits 5 when it collected nothing: a suite that ran no test checked nothing, so fail.
NO_TESTS_FAIL = rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest ran no tests" >&2; exit 1; fi; exit $$rc

pytest: $(STAMP) redis browser
	@$(BIN)/pytest $(PYTEST_ARGS); $(NO_TESTS_FAIL)

# Everything: lint, then every test (the in-process ones and those that start processes).
test: lint pytest

# The edit-run loop: the in-process tests (neither `integration` nor `interleavings`), in a minute.
unit: $(STAMP) redis
	@$(BIN)/pytest -m "not integration and not interleavings" -q $(PYTEST_ARGS); $(NO_TESTS_FAIL)

# A long run of the interleaving test (tests/workers/test_interleavings.py) with fresh randomness:
# SOAK examples (20,000 by default, about half an hour); its figures go to .interleavings.json.
SOAK ?= 20000
soak: $(STAMP)
	BINDERY_INTERLEAVINGS=$(SOAK) BINDERY_INTERLEAVINGS_REPORT=.interleavings.json \
	  $(BIN)/pytest tests/workers/test_interleavings.py -q -p no:cacheprovider; $(NO_TESTS_FAIL)

dev: $(STAMP)
	$(BIN)/bindery dev

# The benchmarks start private redis-servers of their own.
bench: $(STAMP)
	$(BIN)/python bench/run

bench-quick: $(STAMP)
	$(BIN)/python bench/run --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
