# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test stop status bench bench-quick clean

# (Re)install when pyproject.toml changes. `compat` editable mode puts the repo on sys.path,
# so Ray workers and Serve replicas import the project's packages too.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m cluster.local start

stop:
	@test -x $(PY) && $(PY) -m cluster.local stop || true

status: $(STAMP)
	$(PY) -m cluster.local status

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.energy --json benchmarks/results/energy.json
	$(PY) -m benchmarks.nvp --json benchmarks/results/nvp.json

bench-quick: $(STAMP)
	$(PY) -m benchmarks.energy --quick
	$(PY) -m benchmarks.nvp --quick

clean:
	rm -rf runs .pytest_cache
