# Every target bootstraps its own virtual environment on a fresh machine; a second run
# reinstalls only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Segment's analytics.js for the browser test (tests/e2e/test_browser.py), installed from the lock file.
BROWSER := tests/e2e/browser
BROWSER_STAMP := $(BROWSER)/node_modules/.installed

.PHONY: demo test lint bench serve migrate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Without npm the browser test skips itself (and fails under CI, whose .ci/run installs npm and
# chromium), so a missing npm is not an error here; a failing `npm ci` is.
$(BROWSER_STAMP): $(BROWSER)/package.json $(BROWSER)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(BROWSER) --ignore-scripts --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: the browser test (tests/e2e/test_browser.py) will be skipped"; \
	fi

demo: $(STAMP)
	$(BIN)/tactful demo --simulate 60

serve: $(STAMP)
	$(BIN)/tactful serve

migrate: $(STAMP)
	$(BIN)/tactful migrate

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint $(BROWSER_STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis $(BROWSER)/node_modules
