# Two commands for a new user: `make run` starts the service, `make test` runs the test suite.
# Both create .venv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
REALDATA_STAMP := $(VENV)/.realdata-installed

.PHONY: run test lint typecheck check bench simulate clean realdata-extra

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev,plots]'
	touch $(STAMP)

# The optional 'realdata' extra (prompt embeddings for `router bench-real --embeddings`).
# torch is pinned to the local CPU wheel (+cpu is not on PyPI, so this never pulls CUDA builds).
realdata-extra: $(REALDATA_STAMP)

$(REALDATA_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet 'torch==2.13.0+cpu'
	$(VENV)/bin/pip install --quiet -e '.[dev,plots,realdata]'
	touch $(REALDATA_STAMP)

# glibc's malloc: a fixed mmap threshold keeps large temporary buffers (checkpoints) out of the
# heap, so the service's memory levels off (docs/operations.md "Resource bounds").
run: $(STAMP)
	MALLOC_MMAP_THRESHOLD_=$${MALLOC_MMAP_THRESHOLD_:-131072} $(VENV)/bin/router serve $(ARGS)

test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: $(STAMP)
	$(VENV)/bin/router bench $(ARGS)

simulate: $(STAMP)
	$(VENV)/bin/router simulate $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
