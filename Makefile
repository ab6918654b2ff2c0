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
	$(BIN)/pip install -q -e '.[test,train,dask,onnx,trees,peers]'
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

# The shipped caches: exact improved bounds where HiGHS finishes them (DNN1, DNN2), capped
# solves elsewhere (recorded in the cache), and the thesis' weak bounds (1 s per solve).
bounds: install
	$(BIN)/advmilp bounds --arch dnn1,dnn2 --method improved --recompute --cache-dir results/bounds
	$(BIN)/advmilp bounds --arch dnn3,dnn4,dnn5 --method improved --cap 10 --recompute --cache-dir results/bounds
	$(BIN)/advmilp bounds --arch notebook --method improved --cap 2 --recompute --cache-dir results/bounds
	$(BIN)/advmilp bounds --arch all --method weak --time-limit 1 --recompute --cache-dir results/bounds

clean:
	rm -rf $(VENV) build *.egg-info
