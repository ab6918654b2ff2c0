# advmilp — set-up, demo and tests.  Everything installs into ./.venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Offline machines: use the shared MNIST copy when it is there; otherwise 'make demo'
# downloads MNIST (checksum-verified) into ~/.cache/advmilp/mnist.
ADVMILP_DATA ?= $(if $(wildcard ../shared/data/mnist/t10k-labels-idx1-ubyte.gz),$(abspath ../shared/data/mnist),)
export ADVMILP_DATA

.PHONY: install install-test demo test test-fast quick bounds clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,train,dask,onnx]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	@if [ -z "$$ADVMILP_DATA" ]; then $(BIN)/advmilp data download; fi
	$(BIN)/advmilp data check
	$(BIN)/advmilp networks
	$(BIN)/advmilp attack --config configs/smoke.yaml --force

test: install-test
	$(BIN)/pytest -q

test-fast: install-test
	$(BIN)/pytest -q -m "not tensorflow"

quick: install
	$(BIN)/advmilp attack --config configs/quick.yaml

bounds: install
	$(BIN)/advmilp bounds --arch all --method improved
	$(BIN)/advmilp bounds --arch all --method weak --time-limit 1

clean:
	rm -rf $(VENV) build *.egg-info
