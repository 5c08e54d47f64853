# jdss: build, demo and test targets. Everything runs in ./.venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
DRIVERS := $(wildcard drivers/*)

.PHONY: all venv develop demo test clean

all: develop

# The virtual environment; on a bare Debian the venv module may be missing.
$(PY):
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  echo "python3 -m venv failed: installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	  $(PYTHON) -m venv $(VENV); }

$(VENV)/.develop: $(PY) setup.cfg $(wildcard drivers/*/setup.cfg)
	$(PIP) install -e . $(foreach d,$(DRIVERS),-e $(d))
	@touch $@

$(VENV)/.test: $(VENV)/.develop requirements-test.txt
	$(PIP) install -r requirements-test.txt
	@touch $@

venv: $(PY)

develop: $(VENV)/.develop

# Run a whole volume lifecycle against the embedded fake backend.
demo: $(VENV)/.develop
	@JDSS="$(VENV)/bin/jdss" examples/demo.sh

# The whole test suite.
test: $(VENV)/.test
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info demo-state .pytest_cache
