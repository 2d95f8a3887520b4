# Touchstone: `make demo` runs the product on embedded defaults, `make test` runs the suite.
# Both create and reuse .venv and install what they need; a second run is fast.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Label Studio lives in its own virtualenv: its many exact pins cannot share ours.
LS_VENV := .venv-ls
LS_STAMP := $(LS_VENV)/.installed
LS_VERSION := 1.23.2

.PHONY: demo test bench lint venv label-studio chromium clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(LS_STAMP):
	@test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet "label-studio==$(LS_VERSION)"
	@touch $(LS_STAMP)

label-studio: $(LS_STAMP)

demo: $(STAMP) $(LS_STAMP)
	TOUCHSTONE_ENV=$${TOUCHSTONE_ENV:-demo} $(VPY) manage.py demo

test: $(STAMP) $(LS_STAMP)
	bash scripts/test.sh

bench: $(STAMP)
	@set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(VPY) $$script; done
	@echo "== benchmarks/bench_autolabel.py on PostgreSQL"; bash scripts/with_postgres.sh $(VPY) benchmarks/bench_autolabel.py

# ruff, and the import-linter contracts in pyproject.toml (layers point one way).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Browser tests drive Debian's chromium (no browser downloads); install it when missing.
chromium:
	bash scripts/ensure_chromium.sh

clean:
	rm -rf .state test-artifacts
