"""The maintainer scripts, assembled as debian/rules does, run with sh.

systemctl, deb-systemd-invoke, multipathd, udevadm, dpkg-query and the
python3 that runs jdss.lvmfilter are stand-ins that record their calls;
dpkg --compare-versions is the real one. The package test runs the
built scripts for real (tests/package/test-deb.sh).
"""

import hashlib
import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

DEBIAN = os.path.join(ROOT, "debian")
DROPIN = os.path.join(ROOT, "drivers", "multipath", "configs",
                      "multipath.conf")
VERSION = "1:0.1.0"
PVE_UNITS = ("pvedaemon", "pveproxy", "pvestatd", "pve-ha-lrm", "pve-ha-crm")


def dropin_md5():
    with open(DROPIN, "rb") as handle:
        return hashlib.md5(handle.read()).hexdigest()


def assemble(name, directory):
    """The script ``name`` with the helpers and version filled in."""
    with open(os.path.join(DEBIAN, "jdss-maint.sh")) as handle:
        helpers = handle.read()
    with open(os.path.join(DEBIAN, name)) as handle:
        text = handle.read()
    text = text.replace("#JDSS_HELPERS#\n", helpers).replace(
        "#JDSS_VERSION#", VERSION).replace("#JDSS_DROPIN_MD5#", dropin_md5())
    assert "#JDSS_" not in text
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return path


STANDINS = {
    "systemctl": """
echo "systemctl $*" >> "$STATE/calls"
[ "$1 $2" = "is-active --quiet" ] && [ -e "$STATE/active/$3" ]
""",
    "deb-systemd-invoke": """
echo "deb-systemd-invoke $*" >> "$STATE/calls"
[ "$1" = reload ] && [ -e "$STATE/noreload/$2" ] && exit 1
exit 0
""",
    "multipathd": """
echo "multipathd $*" >> "$STATE/calls"
cat "$STATE/paths" 2>/dev/null
""",
    "udevadm": """
echo "udevadm $*" >> "$STATE/calls"
[ "$*" != "control --ping" ] || [ -e "$STATE/udevd" ]
""",
    "python3": """
echo "python3 $*" >> "$STATE/calls"
[ ! -e "$STATE/lvm-fails" ] || { echo "LVM filter: broken" >&2; exit 1; }
""",
    "dpkg-query": """
cat "$STATE/oldfiles" 2>/dev/null
""",
}


class Node:
    """State the stand-ins answer from, and their calls."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.state = tmp_path / "state"
        for sub in ("active", "noreload"):
            (self.state / sub).mkdir(parents=True)
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool, body in STANDINS.items():
            path = self.bin / tool
            path.write_text("#!/bin/sh\n" + body)
            path.chmod(0o755)
        os.symlink(shutil.which("dpkg"), self.bin / "dpkg")
        self.systemd = tmp_path / "systemd"
        self.systemd.mkdir()
        self.proc = tmp_path / "proc"
        self.proc.mkdir()
        self.dropin = tmp_path / "etc" / "jdss.conf"
        self.dropin.parent.mkdir()
        shutil.copy(DROPIN, self.dropin)

    def active(self, *units):
        for unit in units:
            (self.state / "active" / f"{unit}.service").touch()

    def run(self, script, *args, own_unit=None):
        """Run the script (as the child of a unit, if ``own_unit``)."""
        path = assemble(script, self.dir)
        command = [str(path), *args]
        if own_unit:
            # the shell writes what /proc says about it, then becomes the
            # script: same PID
            command = ["sh", "-c", (
                'mkdir -p "$JDSS_PROC/$$"; '
                f'echo "0::/system.slice/{own_unit}" > "$JDSS_PROC/$$/cgroup";'
                ' echo "$$ (sh) S 1 1 1" > "$JDSS_PROC/$$/stat"; '
                'exec "$@"'), "sh", *command]
        proc = subprocess.run(command, capture_output=True, text=True,
                              timeout=60, env={
                                  "PATH": f"{self.bin}:/usr/bin:/bin",
                                  "STATE": str(self.state),
                                  "JDSS_PROC": str(self.proc),
                                  "JDSS_DROPIN": str(self.dropin),
                                  "JDSS_SYSTEMD_DIR": str(self.systemd)})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    def calls(self):
        path = self.state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def invoked(self):
        return [c for c in self.calls() if c.startswith("deb-systemd")]


@pytest.fixture
def node(tmp_path):
    if shutil.which("dpkg") is None:
        pytest.skip("needs dpkg")
    return Node(tmp_path)


def test_install_sets_up_the_host_and_reloads_what_runs(node):
    node.active("multipathd", "pvedaemon", "pveproxy", "pvestatd",
                "pve-ha-lrm")
    (node.state / "udevd").touch()
    (node.state / "paths").write_text(
        "sdb 36001405aa SCST_BIO,vm-100-disk-0,0330\n"
        "sdc [orphan] ATA,Samsung SSD,1B6Q\n")
    node.run("postinst", "configure", "")
    calls = node.calls()
    assert "python3 -m jdss.lvmfilter add" in calls
    assert "udevadm control --reload" in calls
    assert node.invoked() == [
        "deb-systemd-invoke reload multipathd.service",
        "deb-systemd-invoke reload-or-try-restart pvedaemon.service",
        "deb-systemd-invoke reload-or-try-restart pveproxy.service",
        "deb-systemd-invoke reload-or-try-restart pvestatd.service",
        "deb-systemd-invoke reload-or-try-restart pve-ha-lrm.service"]


def test_the_unit_of_the_admins_shell_is_never_restarted(node):
    node.active(*PVE_UNITS)
    output = node.run("postinst", "configure", "1:0.0.9",
                      own_unit="pvedaemon.service")
    invoked = node.invoked()
    assert "deb-systemd-invoke reload pvedaemon.service" in invoked
    assert not any("restart pvedaemon" in c for c in invoked)
    assert "deb-systemd-invoke reload-or-try-restart pveproxy.service" \
        in invoked
    assert "cannot reload" not in output
    # pvedaemon refuses to reload: the admin is told, nothing restarts it
    (node.state / "noreload" / "pvedaemon.service").touch()
    (node.state / "calls").unlink()
    output = node.run("postinst", "configure", "1:0.0.9",
                      own_unit="pvedaemon.service")
    assert "systemctl restart pvedaemon' from another shell" in output
    assert not any("restart pvedaemon" in c for c in node.invoked())


def test_maps_of_other_arrays_keep_multipathd_from_reloading(node):
    node.active("multipathd")
    (node.state / "paths").write_text(
        "sdb 36001405aa SCST_BIO,vm-100-disk-0,0330\n"
        "sdd 3600601601 DGC,VRAID,0533\n"
        "sde 3600601601 DGC,VRAID,0533\n")
    output = node.run("postinst", "configure", "")
    assert node.invoked() == []
    assert "multipathd NOT reloaded" in output and "sdd sde" in output
    # removal only ever widens what multipathd takes: it reloads
    node.run("postrm", "remove")
    assert "deb-systemd-invoke reload multipathd.service" in node.invoked()


def test_without_systemd_nothing_is_started(node):
    node.systemd.rmdir()
    node.active(*PVE_UNITS, "multipathd")
    node.run("postinst", "configure", "")
    node.run("postrm", "purge")
    assert not [c for c in node.calls() if "systemctl" in c
                or "deb-systemd" in c]


def test_a_failing_lvm_filter_does_not_fail_the_install(node):
    (node.state / "lvm-fails").touch()
    output = node.run("postinst", "configure", "")
    assert "LVM filter is not in force" in output


def test_removal_takes_the_lvm_filter_out_and_reloads(node):
    node.active("pvedaemon", "multipathd")
    node.run("prerm", "remove")
    assert node.calls() == ["python3 -m jdss.lvmfilter remove"]
    node.run("postrm", "remove")
    assert node.invoked() == [
        "deb-systemd-invoke reload multipathd.service",
        "deb-systemd-invoke reload-or-try-restart pvedaemon.service"]


@pytest.mark.parametrize("target, downgrade, settings", [
    ("1:0.2.0", False, True), ("1:0.0.9", True, True),
    ("0.1.0", True, False), ("1.0.0", True, False)])
def test_a_downgrade_says_what_it_cannot_undo(node, target, downgrade,
                                              settings):
    node.active("multipathd")
    output = node.run("prerm", "upgrade", target)
    if not downgrade:
        assert output == "" and node.calls() == []
        return
    assert f"jdss: downgrading to {target}: " in output
    assert "not undone: names, exports and CHAP users" in output
    assert node.calls() == ["python3 -m jdss.lvmfilter remove"]
    node.run("postrm", "upgrade", target)
    if settings:
        # that version has host settings: dpkg gives it its own drop-in
        assert "become those of" in output and node.dropin.exists()
        assert node.invoked() == []
    else:
        assert "has none" in output and not node.dropin.exists()
        assert node.invoked() == [
            "deb-systemd-invoke reload multipathd.service"]


def test_an_edited_drop_in_outlives_a_downgrade(node):
    node.dropin.write_text(node.dropin.read_text() + "# mine\n")
    output = node.run("postrm", "upgrade", "0.1.0")
    assert "was edited: it stays" in output and node.dropin.exists()


def test_upgrading_over_the_vendors_package_says_what_stays(node):
    (node.state / "oldfiles").write_text(
        "/usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm\n"
        "/usr/local/bin/jdssc\n")
    output = node.run("preinst", "upgrade", "1.0.0")
    assert "replacing Open-E's plugin 1.0.0" in output
    assert "/etc/pve (storage.cfg, YAML and priv files) is not touched" \
        in output
    (node.state / "oldfiles").write_text("/usr/bin/jdss\n")
    assert node.run("preinst", "upgrade", "0.1.0") == ""
