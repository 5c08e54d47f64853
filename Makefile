# jdss: build, demo and test targets. Everything runs in ./.venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
DRIVERS := $(wildcard drivers/*)

# What the real Proxmox VE storage code (../shared/pve) needs to load, for
# the plugin's tests under it (defined first: := expands it at once), and
# the XS JSON module the package depends on (the plugin reads jdss's output
# with it: JSON::PP takes some 20 ms for a 200-volume list).
PVE_PERL_PACKAGES := libcpanel-json-xs-perl libjson-perl libfile-chdir-perl \
	libtimedate-perl libfilesys-df-perl libdevel-cycle-perl libencode-locale-perl \
	libhttp-message-perl libnet-ip-perl libio-socket-ip-perl \
	libstring-shellquote-perl liburi-perl libxml-libxml-perl \
	liblinux-inotify2-perl libanyevent-perl libnetaddr-ip-perl \
	libposix-strptime-perl libnet-dbus-perl libcrypt-openssl-rsa-perl \
	libmime-base32-perl libauthen-pam-perl libclone-perl

# Real peers the tests drive: a userspace iSCSI target, QEMU's and
# libiscsi's initiators, openssl for the emulator's certificates, the
# parsers of the host settings (multipath -t, lvmconfig/pvs, udevadm test)
# and what the real Proxmox VE storage code needs to load.
SYSTEM_PACKAGES := tgt qemu-utils qemu-block-extra libiscsi-bin openssl \
	multipath-tools lvm2 udev open-iscsi e2fsprogs util-linux bindfs \
	$(PVE_PERL_PACKAGES)

# The one place the version is kept.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' jdss/__init__.py)
PACKAGE := open-e-joviandss-proxmox-plugin
# Open-E's own package has the same name and versions up to 1.0.0 and more;
# the Debian epoch makes every build of this one newer than all of them,
# whatever jdss's own version (an epoch is never dropped again).
EPOCH := 1
DEB := dist/$(PACKAGE)_$(VERSION)_all.deb
BUILD_PACKAGES := debhelper dh-python devscripts build-essential lintian \
	python3-all python3-setuptools

.PHONY: all venv develop demo test reliability system-deps clean deb package-deps \
	package-test install uninstall bench

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

# The whole test suite: Python (pytest), the reliability scenarios, then the
# Perl plugin (prove) under the real Proxmox VE storage code.
test: system-deps $(VENV)/.test
	$(PY) -m pytest --ignore=tests/reliability
	$(MAKE) --no-print-directory reliability
	JDSS_BIN=$(abspath $(VENV)/bin/jdss) prove -I tests/perl/lib tests/perl/t

# Faults, crashes, concurrent load, bad input, secrets: prints the README's
# reliability table (scenario, runs, failures, data lost).
reliability: system-deps $(VENV)/.test
	$(PY) -m pytest tests/reliability

# Install from source (as the user guide says), into the system or DESTDIR.
# The manifest lets uninstall remove exactly what install wrote.
SYSTEM_PYTHON ?= /usr/bin/python3
DESTDIR ?=
MANIFEST := /usr/share/jdss/installed-files
DOCDIR := /usr/share/doc/jdss
DOC_FILES := README.md examples/jdss-Pool-0.yaml examples/jdss-fake.yaml \
	examples/storage.cfg drivers/multipath/configs/multipath.conf
MANUAL := $(wildcard docs/*.md)
PERL_MODULES := $(patsubst perl/%,%,$(shell find perl -name '*.pm'))
# Host settings, as the package installs them: SOURCE:TARGET
HOST_FILES := drivers/multipath/configs/multipath.conf:/etc/multipath/conf.d/jdss.conf \
	host/udev/56-jdss.rules:/lib/udev/rules.d/56-jdss.rules
# The maintainer scripts' commands (debian/jdss-maint.sh), for a real install
HOST_SETUP = JDSS_PYTHON=$(SYSTEM_PYTHON) sh -c '. debian/jdss-maint.sh; $(1)'

install:
	@test -x $(SYSTEM_PYTHON) || { echo "install needs $(SYSTEM_PYTHON) (apt install python3 python3-setuptools)"; exit 1; }
	@records=$$(mktemp -d); set -e; \
	for dir in . $(DRIVERS); do \
	  record="$$records/$$(echo $$dir | tr ./ __).txt"; \
	  (cd $$dir && $(SYSTEM_PYTHON) setup.py -q install --root="$(DESTDIR)/" \
	    --prefix=/usr --install-layout=deb --no-compile \
	    --record="$$record" >/dev/null 2>&1) \
	  || { echo "install of $$dir failed"; exit 1; }; \
	done; \
	for file in $(PERL_MODULES); do \
	  install -D -m 0644 perl/$$file "$(DESTDIR)/usr/share/perl5/$$file"; done; \
	for file in $(DOC_FILES); do \
	  install -D -m 0644 $$file "$(DESTDIR)$(DOCDIR)/$$(basename $$file)"; done; \
	for file in $(MANUAL); do \
	  install -D -m 0644 $$file "$(DESTDIR)$(DOCDIR)/$$file"; done; \
	for pair in $(HOST_FILES); do \
	  install -D -m 0644 $${pair%%:*} "$(DESTDIR)$${pair#*:}"; done; \
	mkdir -p "$(DESTDIR)$$(dirname $(MANIFEST))"; \
	{ cat $$records/*.txt | sed -e "s|^$(DESTDIR)||" -e 's|^\([^/]\)|/\1|'; \
	  for file in $(PERL_MODULES); do echo /usr/share/perl5/$$file; done; \
	  for file in $(notdir $(DOC_FILES)) $(MANUAL); do echo $(DOCDIR)/$$file; done; \
	  for pair in $(HOST_FILES); do echo $${pair#*:}; done; \
	  echo $(MANIFEST); } \
	  | sort -u > "$(DESTDIR)$(MANIFEST)"; \
	rm -rf $$records build drivers/*/build *.egg-info drivers/*/*.egg-info; \
	echo "installed jdss $(VERSION) into $(if $(DESTDIR),$(DESTDIR),/)"
ifeq ($(DESTDIR),)
	@$(call HOST_SETUP,jdss_lvm_filter add; jdss_reload_udev; jdss_reload_multipathd install; jdss_reload_pve)
else
	@echo "DESTDIR: host settings not applied (LVM filter, udev and multipathd reload)"
endif

uninstall:
	@test -f "$(DESTDIR)$(MANIFEST)" || { echo "nothing to uninstall: no $(DESTDIR)$(MANIFEST)"; exit 1; }
ifeq ($(DESTDIR),)
	@$(call HOST_SETUP,jdss_lvm_filter remove)
endif
	@while read -r file; do rm -f "$(DESTDIR)$$file"; done < "$(DESTDIR)$(MANIFEST)"; \
	for dir in /usr/lib/python3/dist-packages/jdss /usr/lib/python3/dist-packages/jdss_iscsi \
	    /usr/lib/python3/dist-packages/jdss_multipath /usr/lib/python3/dist-packages/jdss_nfs \
	    $(DOCDIR) $$(dirname $(MANIFEST)); do \
	  find "$(DESTDIR)$$dir" -depth -type d -empty -delete 2>/dev/null || true; \
	  find "$(DESTDIR)$$dir" -depth -name __pycache__ -exec rm -rf {} + 2>/dev/null || true; \
	  rm -rf "$(DESTDIR)$$dir" 2>/dev/null || true; done; \
	for dir in /etc/multipath/conf.d /etc/multipath /lib/udev/rules.d /lib/udev; do \
	  rmdir "$(DESTDIR)$$dir" 2>/dev/null || true; done; \
	echo "uninstalled jdss from $(if $(DESTDIR),$(DESTDIR),/)"
ifeq ($(DESTDIR),)
	@$(call HOST_SETUP,jdss_reload_udev; jdss_reload_multipathd; jdss_reload_pve)
endif

# Benchmarks: prints a table, writes bench/results.json.
bench: system-deps $(VENV)/.test
	$(PY) bench/run.py

# Debian package -------------------------------------------------------------
package-deps:
	@missing=$$(for package in $(BUILD_PACKAGES); do \
	  dpkg -s $$package >/dev/null 2>&1 || echo $$package; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq $$missing >/dev/null; fi

# debian/changelog is written from jdss/__init__.py, never kept twice.
debian/changelog: jdss/__init__.py Makefile
	printf '%s\n' "$(PACKAGE) ($(EPOCH):$(VERSION)) bookworm; urgency=medium" "" \
	  "  * jdss $(VERSION): see README.md." "" \
	  " -- jdss developers <jdss@example.invalid>  $$(date -R)" > $@

# Built from a copy in a directory of its own: dpkg-buildpackage writes its
# results next to the source, and the parent directory may be shared.
deb: package-deps debian/changelog
	@build=$$(mktemp -d) && trap 'rm -rf "$$build"' EXIT && \
	mkdir "$$build/src" && \
	tar -c --exclude=./.venv --exclude=./dist --exclude=./.git \
	  --exclude=./demo-state --exclude=./.pytest_cache . \
	  | tar -x -C "$$build/src" && \
	(cd "$$build/src" && dpkg-buildpackage -us -uc -b >"$$build/log" 2>&1) \
	  || { cat "$$build/log"; exit 1; }; \
	mkdir -p dist && \
	mv "$$build"/$(PACKAGE)_$(VERSION)_all.deb "$$build"/$(PACKAGE)_$(VERSION)_*.buildinfo \
	  "$$build"/$(PACKAGE)_$(VERSION)_*.changes dist/ && \
	echo "built $(DEB) (version $(EPOCH):$(VERSION))"

# Build the package, install it with apt, use it, upgrade to it (from a
# stand-in of Open-E's package, from the previous build and from an earlier
# build of this tree), downgrade, purge it (needs root). PREVIOUS_REF: the
# last commit whose build is a release without host settings (0.1.0, before
# the epoch).
PREVIOUS_REF ?= 1714bb0
package-test: deb
	tests/package/test-deb.sh $(DEB) $(PREVIOUS_REF)

clean:
	rm -rf $(VENV) build dist *.egg-info demo-state .pytest_cache debian/changelog
