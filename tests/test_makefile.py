"""The Makefile's targets set up what they run on a fresh machine."""

import re
import subprocess

from tests.conftest import ROOT


def make_database():
    """Variables and rules as make reads them (``make -p``), nothing run."""
    out = subprocess.run(["make", "-C", ROOT, "-pq", "--no-print-directory",
                          ".PHONY"], capture_output=True, text=True).stdout
    variables = dict(re.findall(r"^(\w+) :?= ?(.*)$", out, re.M))
    rules = dict(re.findall(r"^([\w.]+): (.*)$", out, re.M))
    return variables, rules


def test_system_deps_install_what_the_real_proxmox_code_needs():
    variables, _ = make_database()
    perl = variables["PVE_PERL_PACKAGES"].split()
    assert "libfile-chdir-perl" in perl
    assert not set(perl) - set(variables["SYSTEM_PACKAGES"].split())


def test_targets_that_drive_real_peers_install_them_first():
    _, rules = make_database()
    for target in ("test", "reliability", "bench"):
        assert "system-deps" in rules[target].split(), target
