# Entry points. Every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/monitor.yaml
OUT    ?= out/demo
PYTEST_ARGS ?=

.PHONY: install sysdeps demo monitor test test-all lint bench validate notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (as on the CI
# machines) nothing ever writes bytecode: every run and every local cluster's fork server compiled
# each module of pipeline/ it imported (0.40-0.55 s of a run's imports, 0.22-0.30 s compiled).
# Run by every target, so modules edited or pulled since are compiled again (only those).
install: $(STAMP)
	@$(BIN)/python -m compileall -q pipeline

# Headless Chromium (HTML bulletin check) and poppler (PDF pages to PNG) come from Debian.
# Best effort: tests that need them skip with a reason when they cannot be installed.
sysdeps:
	@command -v chromium >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null 2>&1) \
	    || echo "note: could not install chromium/poppler-utils; browser and PDF-page tests will skip"; }

demo: install
	$(BIN)/python -m pipeline demo --out $(OUT)

monitor: install
	$(BIN)/python -m pipeline monitor --config $(CONFIG) $(ARGS)

test: install sysdeps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: install sysdeps
	$(BIN)/python -m pytest -m "" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check pipeline tests
	$(BIN)/mypy

bench: install
	$(BIN)/python -m benchmarks

validate: install
	$(BIN)/python -m benchmarks.validate

notebooks: install
	$(BIN)/python -m pytest -m "" tests/test_notebooks.py $(PYTEST_ARGS)

clean:
	rm -rf out .pytest_cache
