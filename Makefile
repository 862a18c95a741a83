# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test stop status bench bench-quick clean sandbox-deps grpc-codegen memory-deps

# (Re)install when pyproject.toml changes. `compat` editable mode puts the repo on sys.path,
# so Ray workers and Serve replicas import the project's packages too.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	@touch $(STAMP)

run: $(STAMP) sandbox-deps grpc-codegen
	$(PY) -m cluster.local start

# bubblewrap is the sandbox's default backend: installed here when we can (root + apt-get);
# otherwise say what to do (the sandbox tests skip, naming the reason, until it is there).
sandbox-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the sandbox backend)"; \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }; \
	  else \
	    echo "NOTE: bubblewrap (bwrap) is not installed; the sandbox needs it: sudo apt-get install bubblewrap"; \
	  fi; }

# Fashion-MNIST (Debian's package, no hub download) for the memory benchmark; installed when we can.
memory-deps:
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing dataset-fashion-mnist (the memory benchmark's data)"; \
	    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	  else \
	    echo "NOTE: the memory benchmark needs Fashion-MNIST: sudo apt-get install dataset-fashion-mnist"; \
	  fi; }

# The memory service's gRPC code, generated from serving/memory_grpc/memory.proto (never committed;
# importing the server or client also generates it when missing or stale).
grpc-codegen: $(STAMP)
	@$(PY) -m serving.memory_grpc.codegen --quiet

stop:
	@test -x $(PY) && $(PY) -m cluster.local stop || true

status: $(STAMP)
	$(PY) -m cluster.local status

test: $(STAMP) sandbox-deps grpc-codegen
	$(PY) -m pytest -q

bench: $(STAMP) sandbox-deps memory-deps grpc-codegen
	$(PY) -m benchmarks.energy --json benchmarks/results/energy.json
	$(PY) -m benchmarks.nvp --json benchmarks/results/nvp.json
	$(PY) -m benchmarks.sandbox --json benchmarks/results/sandbox.json
	$(PY) -m benchmarks.memory --json benchmarks/results/memory.json
	$(PY) -m benchmarks.synthesis --json benchmarks/results/synthesis.json

bench-quick: $(STAMP) sandbox-deps memory-deps grpc-codegen
	$(PY) -m benchmarks.energy --quick
	$(PY) -m benchmarks.nvp --quick
	$(PY) -m benchmarks.sandbox --quick
	$(PY) -m benchmarks.memory --quick
	$(PY) -m benchmarks.synthesis --quick

clean:
	rm -rf runs .pytest_cache serving/memory_grpc/_generated
