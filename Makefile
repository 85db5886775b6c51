# The README's commands. Everything installs into .venv from requirements.lock: the exact
# version and hashes of every dependency (test and dev extras included), compiled from the ranges
# in pyproject.toml. `make lock` recompiles it after pyproject.toml changes; `make upgrade-lock`
# moves every dependency to its newest allowed release. Both are deliberate commits.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --extra test --extra dev \
	--output-file requirements.lock pyproject.toml

.PHONY: demo test test-fast lint bench postgres system-deps clean lock upgrade-lock tryton

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	rm -f $(VENV)/.installed-* && touch $(STAMP)

lock: $(STAMP)
	$(PIP_COMPILE)

upgrade-lock: $(STAMP)
	$(PIP_COMPILE) --upgrade

demo: $(STAMP)
	$(BIN)/finsync demo

# A real Tryton ERP on 127.0.0.1:8010 for trials (database finsync, see README).
tryton: $(STAMP)
	$(BIN)/finsync sandbox tryton

# Make sure the local PostgreSQL server is up (the tests need a real one; they never skip it).
postgres:
	@bash .ci/ensure-postgres

# LibreOffice and poppler, which the workbook tests drive (installed from Debian if missing).
system-deps:
	@bash .ci/system-deps

# Two workers on these 2-core machines (pytest-xdist); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
test: $(STAMP) postgres system-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) postgres
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .finsync reports-out .pytest_cache .mypy_cache .ruff_cache
