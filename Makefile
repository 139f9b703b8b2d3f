# Set-up, tests and the main runs.  `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
MN_STAMP := $(VENV)/.installed-mn
OUT    ?= result/ssl_default
DEMO   ?= result/demo
PYTEST_ARGS ?=

.PHONY: help install install-gpu install-mn test test-gpu demo ssl bench clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	    awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv with the pinned packages and this project (editable)

# Chainer 7.8.1 is a source package whose setup.py imports pkg_resources and
# needs numpy<2: pin the build tools into the venv first, then build Chainer
# (and this project) against them with --no-build-isolation, so pip does not
# fetch a newer setuptools.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "setuptools==65.5.0" wheel "numpy==1.26.4"
	$(PIP) install --quiet --no-build-isolation -r requirements.txt
	$(PIP) install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

install-gpu: install  ## add CuPy (CUDA 12.x) to .venv
	$(PIP) install --quiet -r requirements-gpu.txt

install-mn: $(MN_STAMP)  ## add mpi4py and MPICH (mpiexec in .venv) for --multi-node

$(MN_STAMP): $(STAMP) requirements-mn.txt
	$(PIP) install --quiet -r requirements-mn.txt
	touch $(MN_STAMP)

# the multi-node tests launch mpiexec -n 2: test installs install-mn
test: install-mn  ## run the CPU test suite (with the multi-node tests)
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(PY) -m pytest -q $(PYTEST_ARGS) tests

test-gpu: install-gpu  ## run the tests that need a CUDA GPU
	$(PY) -m pytest -q -m gpu tests

demo: install  ## a 3-minute CPU demo: a short SSL run and a short four-way on Stacked-MNIST
	rm -rf $(DEMO)
	$(PY) train_ssl.py --out $(DEMO)/ssl --epochs 2 --lr-decay-epochs 1 \
	    --pool-size 6000 --no-progress
	$(PY) -m animeface.compare --data stacked-mnist --size 32 --ch 64 \
	    --batchsize 32 --iterations 200 --grid-interval 50 \
	    --snapshot-interval 200 --log-interval 50 --no-metrics --out $(DEMO)/compare
	@echo
	@echo "Pictures to open:"
	@ls -1 $(DEMO)/ssl/accuracy.png $(DEMO)/ssl/samples_latest.png \
	    $(DEMO)/compare/compare.png $(DEMO)/compare/final_*.png | sed 's/^/  /'

ssl: install  ## the default semi-supervised MNIST run (again: continues or reports it)
	$(PY) train_ssl.py --out $(OUT) --resume auto

bench: install  ## time an SSL iteration and a DCGAN step (JSON under result/bench)
	$(PY) benchmarks/ssl_speed.py --json result/bench/ssl_speed.json
	$(PY) benchmarks/dcgan_speed.py --blocks 4 --iters 3 --json result/bench/dcgan_speed.json

clean:  ## remove .venv, build files and caches (runs under result/ are kept)
	rm -rf $(VENV) *.egg-info build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
