"""The udev rule, run by the real udev rule engine (``udevadm test``).

udev reads a stand-in sysfs here: a SCSI LUN of a given vendor with a
partition, and a multipath map over it, built on tmpfs in a sandbox
(SYSTEMD_DEVICE_VERIFY_SYSFS=0 lets udev accept it). The LUN's device
node is a loop device carrying a guest's PV, so blkid, LVM's pvscan and
every other rule of this machine run for real.
"""

import os
import re
import sys

import pytest

from tests import sandbox
from tests.conftest import ROOT

RULE = os.path.join(ROOT, "host", "udev", "56-jdss.rules")

SCRIPT = r"""
install -D -m 0644 "$RULE" /etc/udev/rules.d/56-jdss.rules
# a guest's PV on the LUN
pvcreate -q -y "$LOOP" >/dev/null
vgcreate -q --config 'backup { backup = 0 archive = 0 }' jdssguestvg "$LOOP" >/dev/null 2>&1
trap 'wipefs -a -q "$LOOP"' EXIT
read -r major minor < <(stat -c '%t %T' "$LOOP")
mknod /dev/sdz b $((16#$major)) $((16#$minor))

platform=/sys/devices/platform
mount -t tmpfs jdss-sysfs "$platform"
lun=$platform/host9/session9/target9:0:0/9:0:0:0
mkdir -p "$lun/block/sdz/sdz1" "$platform/dm-7/dm" "$platform/dm-7/slaves"
printf 'DEVTYPE=scsi_device\nDRIVER=sd\n' > "$lun/uevent"
ln -s /sys/bus/scsi "$lun/subsystem"
printf '%-8s\n' "$VENDOR" > "$lun/vendor"
printf 'vm-100-disk-0   \n' > "$lun/model"
printf 'MAJOR=%d\nMINOR=%d\nDEVNAME=sdz\nDEVTYPE=disk\n' $((16#$major)) $((16#$minor)) > "$lun/block/sdz/uevent"
ln -s /sys/class/block "$lun/block/sdz/subsystem"
ln -s ../../../9:0:0:0 "$lun/block/sdz/device"
printf 'MAJOR=259\nMINOR=901\nDEVNAME=sdz1\nDEVTYPE=partition\nPARTN=1\n' > "$lun/block/sdz/sdz1/uevent"
ln -s /sys/class/block "$lun/block/sdz/sdz1/subsystem"
printf 'MAJOR=253\nMINOR=7\nDEVNAME=dm-7\nDEVTYPE=disk\n' > "$platform/dm-7/uevent"
printf '%s\n' "$DM_UUID" > "$platform/dm-7/dm/uuid"
printf '%s\n' "${DM_UUID#*-}" > "$platform/dm-7/dm/name"
ln -s /sys/class/block "$platform/dm-7/subsystem"
ln -s "$lun/block/sdz" "$platform/dm-7/slaves/sdz"

for device in "$lun/block/sdz:add" "$lun/block/sdz/sdz1:add" "$platform/dm-7:change"; do
    path=${device%:*}
    echo "@@@ ${path##*/}"
    SYSTEMD_DEVICE_VERIFY_SYSFS=0 SYSTEMD_LOG_LEVEL=debug \
        udevadm test --action="${device##*:}" "${device%:*}" 2>&1 || true
done
"""


def udev_test(tmp_path, vendor, dm_uuid="mpath-36001405aabbccddeeff"):
    """``{device: log}`` of ``udevadm test`` for sdz, sdz1 and dm-7."""
    sandbox.require("udevadm", "pvcreate", "losetup", "wipefs")
    with sandbox.loop_device(str(tmp_path)) as device:
        proc = sandbox.run(SCRIPT, devices=[device], env={
            "RULE": RULE, "LOOP": device, "VENDOR": vendor,
            "DM_UUID": dm_uuid, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    logs = {}
    for chunk in proc.stdout.split("@@@ ")[1:]:
        name, _, log = chunk.partition("\n")
        logs[name] = log
    assert set(logs) == {"sdz", "sdz1", "dm-7"}, proc.stdout[-2000:]
    return logs


def properties(log):
    return dict(line.split("=", 1) for line in log.splitlines()
                if re.match(r"^[A-Z_.][A-Z0-9_]*=", line))


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory):
    return tmp_path_factory.mktemp("udev")


@pytest.fixture(scope="module")
def jovian(tmp_module):
    return udev_test(tmp_module, "SCST_BIO")


@pytest.fixture(scope="module")
def other(tmp_module):
    return udev_test(tmp_module, "LIO-ORG")


def test_udev_reads_the_rule_without_complaint(jovian):
    for log in jovian.values():
        assert "Reading rules file: /etc/udev/rules.d/56-jdss.rules" in log
        # parse problems read "FILE:LINE: message"
        assert not re.search(r"56-jdss\.rules:\d+: ", log), log


def test_a_jovian_lun_is_linked_and_not_probed(jovian):
    for name in ("sdz", "sdz1"):
        props = properties(jovian[name])
        assert props["JDSS_DEVICE"] == "lun"
        assert f"/dev/jdss/{name}" in props["DEVLINKS"].split()
        assert "builtin command 'blkid'" not in jovian[name]
        assert "ID_FS_TYPE" not in props
    # so LVM's rule never runs pvscan and nothing gets activated
    assert "pvscan" not in jovian["sdz"]
    assert "vgchange" not in jovian["sdz"]


def test_another_arrays_lun_is_left_as_it_was(other):
    props = properties(other["sdz"])
    assert "JDSS_DEVICE" not in props
    assert "/dev/jdss/" not in other["sdz"]
    # the guest's PV is found and would be auto-activated: what the rule
    # prevents for JovianDSS LUNs
    assert props["ID_FS_TYPE"] == "LVM2_member"
    assert "pvscan --cache" in other["sdz"]
    assert "LVM_VG_NAME_COMPLETE=jdssguestvg" in other["sdz"]


def test_a_multipath_map_of_jovian_luns_is_kept_out(jovian):
    props = properties(jovian["dm-7"])
    assert props["JDSS_DEVICE"] == "map"
    assert props["DM_NOSCAN"] == "1"
    assert props["UDEV_DISABLE_PERSISTENT_STORAGE_RULES_FLAG"] == "1"
    links = props["DEVLINKS"].split()
    assert "/dev/jdss/dm-7" in links
    # the name jdss and os-brick look the map up by is made as before
    assert "/dev/mapper/36001405aabbccddeeff" in links
    assert "/dev/disk/by-id/dm-uuid-mpath-36001405aabbccddeeff" in links
    # and no rule sends SCSI commands through the map
    assert not re.search(r"Starting '\S*(sg_inq|scsi_id)", jovian["dm-7"])


def test_maps_of_other_arrays_and_lvm_volumes_are_left_alone(tmp_module,
                                                             other):
    assert "JDSS_DEVICE" not in properties(other["dm-7"])
    logs = udev_test(tmp_module, "SCST_BIO", dm_uuid="LVM-abcdef")
    assert "JDSS_DEVICE" not in properties(logs["dm-7"])
