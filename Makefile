# Set-up, tests and the main runs.  `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
MN_STAMP := $(VENV)/.installed-mn
GPU_STAMP := $(VENV)/.installed-gpu
OUT    ?= result/ssl_default
DEMO   ?= result/demo
PYTEST_ARGS ?=

.PHONY: help install install-gpu install-mn test test-gpu gpu-check demo ssl \
	bench clean

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

install-gpu: $(GPU_STAMP)  ## add CuPy and the CUDA 12 libraries to .venv (needs an NVIDIA driver to run)
	@# what is there and what is missing; status 1 (only the driver or the
	@# GPU missing) is fine on a machine without a GPU, 2 (a library) not
	$(PY) -m gan.gpu || test $$? -eq 1

# CuPy and the CUDA 12 libraries from PyPI; a .pth file makes every Python
# of the venv load them before CuPy (gan/cuda_libs.py)
$(GPU_STAMP): $(STAMP) requirements-gpu.txt
	$(PIP) install --quiet -r requirements-gpu.txt
	$(PY) -m gan.cuda_libs --write-pth
	touch $(GPU_STAMP)

install-mn: $(MN_STAMP)  ## add mpi4py and MPICH (mpiexec in .venv) for --multi-node

$(MN_STAMP): $(STAMP) requirements-mn.txt
	$(PIP) install --quiet -r requirements-mn.txt
	touch $(MN_STAMP)

# the multi-node tests launch mpiexec -n 2: test installs install-mn
test: install-mn  ## run the CPU test suite (with the multi-node tests)
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(PY) -m pytest -q $(PYTEST_ARGS) tests

test-gpu: install-gpu  ## run the tests that need a CUDA GPU
	$(PY) -m pytest -q -m gpu -rs tests

# the first machine with a GPU: tests, speed, a 2-epoch run -> one JSON
gpu-check: install-gpu install-mn  ## GPU tests, GPU speed and a 2-epoch SSL run (result/gpu_check.json)
	$(PY) benchmarks/gpu_check.py --json result/gpu_check.json

# The demo's Stacked-MNIST setting (Adam step 4e-4, 400 iterations, seed 0)
# was picked to show the plain DCGAN's early collapse within the time; seeds
# 0-2 all show it (experiments/demo.py lists what was tried).
demo: install  ## a 3-minute CPU demo: a short SSL run; DCGAN against minibatch discrimination on Stacked-MNIST, with mode counts
	rm -rf $(DEMO)
	mkdir -p $(DEMO)
	@echo "== semi-supervised MNIST, 100 labels, 300 iterations (about 40 s)"
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(PY) train_ssl.py \
	    --out $(DEMO)/ssl --epochs 10 --iters-per-epoch 30 \
	    --lr-decay-epochs 3 --snapshot-interval 10 --no-progress
	@echo "== Stacked-MNIST: DCGAN, then + minibatch discrimination (about 90 s; progress in $(DEMO)/compare.txt)"
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(PY) -m animeface.compare \
	    --data stacked-mnist --size 32 --ch 64 --batchsize 64 --lr 4e-4 \
	    --seed 0 --iterations 400 --snapshot-interval 100 \
	    --grid-interval 100 --log-interval 100 --variants dcgan mbd \
	    --input-noise 0 --dis-dropout 0 \
	    --no-metrics --out $(DEMO)/compare > $(DEMO)/compare.txt
	@echo "== modes covered over training (2000 samples a point)"
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(PY) -m experiments.demo \
	    --compare $(DEMO)/compare --ssl $(DEMO)/ssl --out $(DEMO)
	@echo
	@echo "Pictures to open:"
	@for f in $(DEMO)/demo.png $(DEMO)/ssl/accuracy.png \
	    $(DEMO)/ssl/samples_latest.png $(DEMO)/compare/compare.png; do \
	    if [ -f $$f ]; then echo "  $$f"; \
	    else echo "  $$f is missing" >&2; exit 1; fi; done

ssl: install  ## the default semi-supervised MNIST run (again: continues or reports it)
	$(PY) train_ssl.py --out $(OUT) --resume auto

bench: install  ## time an SSL iteration and a DCGAN step (JSON under result/bench)
	$(PY) benchmarks/ssl_speed.py --json result/bench/ssl_speed.json
	$(PY) benchmarks/dcgan_speed.py --blocks 4 --iters 3 --json result/bench/dcgan_speed.json

clean:  ## remove .venv, build files and caches (runs under result/ are kept)
	rm -rf $(VENV) *.egg-info build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
