# Two commands for a newcomer: `make run` and `make test` (see README.md).
SHELL := /bin/bash
# Debian's python3.11 (built with PGO and LTO, statically linked) starts ~20% faster than a
# pyenv build; dockyard-runtime is exec'd per container operation, so prefer it when present.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
BUNDLE := .cache/busybox-bundle
RUNTIME_ROOT ?= /run/dockyard-runtime

.PHONY: run test unit deps venv bundle bench bench-images bench-engine bench-network bench-registry bench-pull lint clean

deps:
	@scripts/install-deps.sh

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m dockyard.runtime.launcher $(abspath $(BIN))
	@touch $@

venv: $(BIN)/.installed

bundle: deps venv
	$(BIN)/python scripts/busybox_bundle.py $(BUNDLE) echo hello world

# The main job: the seed's hello world through dockyardd (started on /var/run/dockyard.sock if it is
# not running), once with the docker CLI and once with docker-py; then straight through dockyard-runtime.
run: bundle
	$(BIN)/python scripts/hello.py
	$(BIN)/dockyard-runtime --root $(RUNTIME_ROOT) run --bundle $(BUNDLE) make-run-$$$$

# The whole suite. Tests needing root are marked `privileged` and skip themselves without root.
test: deps venv
	$(BIN)/python -m mypy src
	$(BIN)/python -m pytest -q tests

unit: venv
	$(BIN)/python -m pytest -q tests/unit

bench: deps venv
	$(BIN)/python bench/runtime_start.py

# Image load + unpack vs `docker load` (the first run debootstraps a Debian rootfs, cached).
bench-images: deps venv
	$(BIN)/python bench/image_load.py

# Engine vs dockerd 20.10 through the docker CLI: run --rm latency, RSS, shims, a 50-container burst.
bench-engine: deps venv
	$(BIN)/python bench/engine.py

bench-network: deps venv
	$(BIN)/python bench/network.py

bench-registry: deps venv
	$(BIN)/python bench/registry.py

# dockyardd vs dockerd: docker pull (+ unpack) of a 1 GiB image from dockyard-registry
bench-pull: deps venv
	$(BIN)/python bench/pull.py

lint: venv
	$(BIN)/python -m mypy src

clean:
	rm -rf $(VENV) .cache build src/*.egg-info
