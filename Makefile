# Two commands do all the set-up on a fresh machine:
#   make test   create .venv if missing, install the pinned requirements, run the test suite
#   make demo   same set-up, then the end-to-end job on embedded synthetic data
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_WORKERS ?= 2
# The report test looks at the page in headless Chromium: Debian's chromium + chromium-driver.
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv browser bytecode test demo clean

# uv installs the same pinned wheels as pip, in parallel: 39 s against pip's 133 s for
# requirements.txt into a fresh venv on 2 cores (3 s of it installing uv itself). It compiles
# the bytecode as pip does: without it every process compiled TensorFlow's modules again where
# PYTHONDONTWRITEBYTECODE is set (import tensorflow 18-26 s instead of 9). Where uv cannot run or
# reach the index (it reads no pip.conf), pip installs them: INSTALLER=pip forces that.
# The venv is made without pip (ensurepip took 6 of its 6.5 s): the interpreter's own pip puts uv
# into it (pip --python, pip >= 22.3), and uv adds pip with the requirements, for later use.
INSTALLER ?= uv
UV_VERSION := 0.13.10
PIP_VERSION := 25.0.1

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), f"tfseti needs Python >= 3.11, found {sys.version.split()[0]} at {sys.executable}; set PYTHON=/path/to/python3.11"'
	@test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	@echo "installing requirements.txt and tfseti into $(VENV) with $(INSTALLER)"
	@if [ "$(INSTALLER)" = uv ] && $(PYTHON) -m pip --python $(PY) install --quiet uv==$(UV_VERSION) \
	    && $(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode -r requirements.txt \
	         pip==$(PIP_VERSION); then \
	  $(VENV)/bin/uv pip install --python $(PY) --quiet --no-deps -e .; \
	else \
	  [ "$(INSTALLER)" = uv ] && echo "make: uv could not install requirements.txt; installing with pip" >&2; \
	  ( $(PY) -m pip --version > /dev/null 2>&1 || $(PY) -m ensurepip --upgrade > /dev/null ) \
	    && $(PY) -m pip install --quiet --upgrade pip \
	    && $(PY) -m pip install --quiet -r requirements.txt \
	    && $(PY) -m pip install --quiet --no-deps -e .; \
	fi
	@touch $(STAMP)

venv: $(STAMP)

$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver

browser: $(CHROMEDRIVER)

# The package's own bytecode, compiled once (up-to-date files are skipped): where
# PYTHONDONTWRITEBYTECODE is set, each of the suite's and the demo's processes would otherwise
# compile the modules it imports again (all of them: 1.9 s).
bytecode: $(STAMP)
	@$(PY) -m compileall -q tfseti tfrecords_tools benchmarks > /dev/null

# Whole modules to a worker, in the suite's order (--dist loadscope --no-loadscope-reorder): the
# modules of heavy tests come first (tests/conftest.py), one to each worker, and the rest fill in.
# With the default load scheduling the first worker's first chunk (an eighth of the suite) held
# every heavy module (about half the suite's time), and a module split over both workers sets its
# module fixtures up twice.
test: $(STAMP) $(CHROMEDRIVER) bytecode
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15 tests

demo: $(STAMP) bytecode
	$(PY) -m tfseti.demo --out $(DEMO_OUT)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
