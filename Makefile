# jdss: build, demo and test targets. Everything runs in ./.venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
DRIVERS := $(wildcard drivers/*)

# Real peers the tests drive: a userspace iSCSI target, QEMU's and
# libiscsi's initiators, openssl for the emulator's certificates.
SYSTEM_PACKAGES := tgt qemu-utils qemu-block-extra libiscsi-bin openssl

.PHONY: all venv develop demo test system-deps clean

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

# Debian packages the tests need (installed when missing and run as root).
system-deps:
	@missing=$$(for package in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$package >/dev/null 2>&1 || echo $$package; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(SYSTEM_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else echo "tests that need $$missing will be skipped (run as root to install)"; fi; \
	fi

# The whole test suite: Python (pytest), then the Perl plugin (prove).
test: system-deps $(VENV)/.test
	$(PY) -m pytest
	JDSS_BIN=$(abspath $(VENV)/bin/jdss) prove -I tests/perl/lib -I perl tests/perl/t

clean:
	rm -rf $(VENV) build dist *.egg-info demo-state .pytest_cache
