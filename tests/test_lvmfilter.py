"""The LVM filter: edits LVM itself reads, and PVs it then cannot see.

Every result is checked with LVM's own tools: lvmconfig parses the edited
files (LVM_SYSTEM_DIR), and pvs/pvscan run on a loop device carrying a PV
in a sandbox whose /etc and /dev are throw-away.
"""

import os
import shutil
import sys

import pytest

from jdss import lvmfilter
from tests import sandbox

DEBIAN_LVM_CONF = "/etc/lvm/lvm.conf"
OURS = list(lvmfilter.PATTERNS)
PVE_LINE = '\tglobal_filter=["r|/dev/zd.*|","r|/dev/rbd.*|"]\n'
MULTI_LINE = ('    global_filter = [\n'
              '        "r|/dev/sd[a-c]|",   # local disks ] # not the end\n'
              '        "r|/dev/zd.*|"\n'
              '    ]\n')
SINGLE = '    global_filter = "r|/dev/rbd.*|"   # one string\n'
VENDOR = '     global_filter=["r|/dev/zd.*|","r|/dev/mapper/[0-9]|"]\n'


def lvm_dir(tmp_path, devices_lines="", local_lines=""):
    """A copy of Debian's LVM configuration with lines in ``devices {``."""
    if not os.path.exists(DEBIAN_LVM_CONF) or \
            shutil.which("lvmconfig", path="/usr/sbin:/sbin") is None:
        pytest.skip("needs lvm2 (make test installs it as root)")
    directory = tmp_path / "lvm"
    directory.mkdir()
    with open(DEBIAN_LVM_CONF) as handle:
        text = handle.read()
    if devices_lines:
        text = text.replace("\ndevices {\n", "\ndevices {\n" + devices_lines,
                            1)
    (directory / "lvm.conf").write_text(text)
    local = "local {\n}\n" + (f"devices {{\n{local_lines}}}\n"
                              if local_lines else "")
    (directory / "lvmlocal.conf").write_text(local)
    return directory


@pytest.mark.parametrize("lines, before", [
    ("", ["a|.*|"]),
    (PVE_LINE, ["r|/dev/zd.*|", "r|/dev/rbd.*|"]),
    (MULTI_LINE, ["r|/dev/sd[a-c]|", "r|/dev/zd.*|"]),
    (SINGLE, ["r|/dev/rbd.*|"]),
    (VENDOR, ["r|/dev/zd.*|", "r|/dev/mapper/[0-9]|"]),
], ids=["none", "proxmox", "multi-line", "single-string", "vendor"])
def test_patterns_go_first_and_come_out_byte_for_byte(tmp_path, lines,
                                                      before):
    directory = lvm_dir(tmp_path, lines)
    original = (directory / "lvm.conf").read_bytes()
    assert lvmfilter.effective(str(directory)) == before
    assert lvmfilter.status(str(directory))[0] is False

    lvmfilter.install(str(directory))
    after = OURS + ([] if before == ["a|.*|"] else before)
    assert lvmfilter.effective(str(directory)) == after   # lvmconfig says
    assert lvmfilter.status(str(directory))[0] is True
    edited = (directory / "lvm.conf").read_bytes()
    lvmfilter.install(str(directory))                       # idempotent
    assert (directory / "lvm.conf").read_bytes() == edited
    assert (directory / "lvmlocal.conf").read_text() == "local {\n}\n"

    lvmfilter.uninstall(str(directory))
    assert (directory / "lvm.conf").read_bytes() == original
    assert lvmfilter.effective(str(directory)) == before


def test_a_filter_in_lvmlocal_conf_is_the_one_extended(tmp_path):
    directory = lvm_dir(tmp_path, PVE_LINE, local_lines=SINGLE)
    lvm_conf = (directory / "lvm.conf").read_bytes()
    local = (directory / "lvmlocal.conf").read_bytes()
    lvmfilter.install(str(directory))
    assert (directory / "lvm.conf").read_bytes() == lvm_conf
    assert lvmfilter.effective(str(directory)) == OURS + ["r|/dev/rbd.*|"]
    lvmfilter.uninstall(str(directory))
    assert (directory / "lvmlocal.conf").read_bytes() == local


def test_edits_made_after_install_survive_the_removal(tmp_path):
    directory = lvm_dir(tmp_path, PVE_LINE)
    lvmfilter.install(str(directory))
    path = directory / "lvm.conf"
    path.write_text(path.read_text().replace(
        '"r|/dev/rbd.*|"]', '"r|/dev/rbd.*|","r|/dev/nbd.*|"]'))
    lvmfilter.uninstall(str(directory))
    assert lvmfilter.effective(str(directory)) == [
        "r|/dev/zd.*|", "r|/dev/rbd.*|", "r|/dev/nbd.*|"]
    assert lvmfilter.BEGIN not in path.read_text()


def test_a_configuration_lvm_cannot_read_is_left_alone(tmp_path):
    directory = lvm_dir(tmp_path)
    path = directory / "lvm.conf"
    path.write_text(path.read_text() + "devices {\n  sysfs_scan =\n}\n")
    broken = path.read_bytes()
    with pytest.raises(lvmfilter.FilterError, match="lvmconfig"):
        lvmfilter.install(str(directory))
    assert path.read_bytes() == broken
    path.write_text(path.read_text() + "devices {\n  global_filter = [\n")
    with pytest.raises(lvmfilter.FilterError, match="unterminated"):
        lvmfilter.install(str(directory))
    assert lvmfilter.main(["add", "--lvm-dir", str(directory)]) == 1


def test_an_accept_pattern_is_reported(tmp_path):
    directory = lvm_dir(tmp_path,
                        '\tglobal_filter = [ "r|/dev/zd.*|", "a|.*|" ]\n')
    lvmfilter.install(str(directory))
    in_force, detail = lvmfilter.status(str(directory))
    assert in_force is False and "a|.*|" in detail


def test_without_lvm_nothing_is_done(tmp_path):
    assert "not installed" in lvmfilter.install(str(tmp_path))
    assert "no JovianDSS" in lvmfilter.uninstall(str(tmp_path))


# pvs and pvscan on a real PV --------------------------------------------
PV_SCRIPT = r"""
dev=$LOOP; name=${dev#/dev/}
pvcreate -q -y "$dev" >/dev/null
vgcreate -q --config 'backup { backup = 0 archive = 0 }' jdssguestvg "$dev" >/dev/null
trap 'wipefs -a -q "$dev"' EXIT
mkdir -p /dev/jdss /dev/disk/by-path
seen() {  # which names pvs lists, and what autoactivation would start
    echo "$1 pvs: $(pvs --noheadings -o pv_name,vg_name 2>/dev/null | xargs)"
    rm -rf /run/lvm/pvs_online /run/lvm/vgs_online
    echo "$1 pvscan: $(pvscan --cache --listvg --checkcomplete --vgonline \
        --autoactivation event --udevoutput "$dev" 2>/dev/null | xargs)"
}
seen plain
ln -s "../$name" "/dev/jdss/$name"
seen jdss-link-unfiltered
"$PYTHON" -m jdss.lvmfilter add >/dev/null
seen jdss-link
rm "/dev/jdss/$name"
ln -s "../../$name" "/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2021-10.iscsi:vm-100-disk-0-lun-0"
seen by-path
rm /dev/disk/by-path/*
ln -s "../../$name" "/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2003-01.org.linux-iscsi:other-lun-0"
seen other-target
ln -s "../$name" "/dev/jdss/$name"
sed -i 's/"r|^\/dev\/jdss\/|", /&"a|.*|", /' /etc/lvm/lvm.conf
seen accept-pattern
"$PYTHON" -m jdss.lvmfilter status || true
"""


def pv_runs(tmp_path):
    sandbox.require("pvcreate", "pvs", "lvmconfig", "losetup", "wipefs")
    with sandbox.loop_device(str(tmp_path)) as device:
        proc = sandbox.run(PV_SCRIPT, devices=[device],
                           env={"LOOP": device, "PYTHON": sys.executable,
                                "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines()
                 if ": " in line)
    return device, lines


def test_a_pv_on_a_jovian_device_is_not_scanned(tmp_path):
    device, seen = pv_runs(tmp_path)
    # without the filter LVM sees the guest's VG and would activate it
    assert seen["plain pvs"] == f"{device} jdssguestvg"
    assert "LVM_VG_NAME_COMPLETE=jdssguestvg" in seen["plain pvscan"]
    assert seen["jdss-link-unfiltered pvs"] == f"{device} jdssguestvg"
    # with it, reached as /dev/jdss/<name> or by a by-path link of a
    # jdss target, scans (pvs, vgs, vgscan, vgchange -ay) do not see it
    for case in ("jdss-link", "by-path"):
        assert seen[f"{case} pvs"] == "", case
        # udev's autoactivation names the device by its kernel name only,
        # which no filter on links can catch: that is the udev rule's job
        # (tests/test_udev_rule.py)
        assert "jdssguestvg" in seen[f"{case} pvscan"], case
    # another array's iSCSI LUN stays visible
    assert seen["other-target pvs"] == f"{device} jdssguestvg"
    # an accept pattern defeats it, as status says
    assert seen["accept-pattern pvs"] == f"{device} jdssguestvg"
    assert seen["not in force"].startswith("global_filter")
