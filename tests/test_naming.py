import re

import pytest
from hypothesis import given, strategies as st

from jdss import naming
from jdss.errors import InvalidInput

VOLUME_CHARS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
             "0123456789_.:+-", min_size=1, max_size=60).filter(
    lambda s: s[0] not in ".:+-")


@pytest.mark.parametrize("name, appliance", [
    ("vm-100-disk-0", "v_vm-100-disk-0"),
    ("base-100-disk-1", "v_base-100-disk-1"),
    ("vm-100-state-snap_1", "v_vm-100-state-snap_1"),
    ("vm-100-cloudinit", "v_vm-100-cloudinit"),
])
def test_plain_names_get_v_prefix(name, appliance):
    assert naming.to_appliance_volume(name) == appliance
    assert naming.from_appliance_volume(appliance) == name


def test_other_characters_use_vh_with_base32():
    name = "proxmox-content.pool-0"
    appliance = naming.to_appliance_volume(name)
    assert appliance == ("vh_proxmox-content_pool-0_"
                         + naming.b32encode(name))
    assert "=" not in appliance
    assert naming.from_appliance_volume(appliance) == name


def test_vb_names_of_older_releases_are_read():
    assert naming.from_appliance_volume(
        "vb_" + naming.b32encode("my.disk")) == "my.disk"


@pytest.mark.parametrize("appliance", [
    "t_vm-100-disk-0_abc", "se_snap1_ABCD", "c_v_x", "v_", "vh_broken",
    "vh_a_" + naming.b32encode("b"), "something", "vb_!!!"])
def test_foreign_and_hidden_names_are_not_volumes(appliance):
    assert naming.from_appliance_volume(appliance) is None


@given(VOLUME_CHARS)
def test_every_volume_name_round_trips(name):
    appliance = naming.to_appliance_volume(name)
    assert naming.from_appliance_volume(appliance) == name
    assert all(c.isalnum() or c in "_-" for c in appliance)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-",
               min_size=1, max_size=40).filter(lambda s: s[0] != "-"))
def test_snapshot_names_round_trip(snap):
    assert naming.from_appliance_snapshot(naming.snapshot_name(snap)) == snap


@given(VOLUME_CHARS, st.text(alphabet="abcdefghij_-0123456789", min_size=1,
                             max_size=20).filter(lambda s: s[0] != "-"))
def test_snapshot_clone_names_round_trip(volume, snap):
    aname = naming.snapshot_clone_name(volume, snap)
    assert aname.startswith("se_")
    assert naming.parse_snapshot_clone_name(aname) == (volume, snap)
    assert naming.from_appliance_volume(aname) is None


@pytest.mark.parametrize("name", [
    "", "-rf", "a/b", "../etc", "a b", "a;rm", "vm@1", "ä", "a\nb", ".x",
    "x" * 300])
def test_bad_volume_names_are_refused(name):
    with pytest.raises(InvalidInput):
        naming.validate_volume_name(name)


@pytest.mark.parametrize("name", ["", "-x", "a.b", "a b", "s@1", "a/b"])
def test_bad_snapshot_names_are_refused(name):
    with pytest.raises(InvalidInput):
        naming.validate_snapshot_name(name)


def test_target_suffix_is_a_valid_iqn_part():
    assert naming.target_suffix("vm-100-disk-0") == "vm-100-disk-0"
    odd = naming.target_suffix("VM_100")
    assert odd.startswith("vh:") and odd == odd.lower()
    assert naming.target_suffix("vh-abc") == "vh-abc"
    assert naming.target_suffix("VM_100") != naming.target_suffix("VM_101")


def test_target_names_hold_the_pool():
    first = naming.target_name("iqn.2021-10.iscsi:", "Pool-0", "vm-1-disk-0")
    assert first == "iqn.2021-10.iscsi:pool-0:vm-1-disk-0"
    assert naming.target_name("iqn.2021-10.iscsi:", "Pool-1",
                              "vm-1-disk-0") != first
    assert naming.target_name("iqn.2021-10.iscsi:", "Pool_X.1",
                              "vm-1-disk-0") == \
        "iqn.2021-10.iscsi:pool-x.1:vm-1-disk-0"


@given(st.text(alphabet="abcdefghij.-_:+", min_size=1, max_size=255).filter(
    lambda s: s[0].isalpha()))
def test_long_target_names_are_cut_deterministically(name):
    iqn = naming.target_name("iqn.2021-10.iscsi:", "Pool-0", name)
    assert len(iqn.encode()) <= naming.MAX_IQN
    assert iqn == naming.target_name("iqn.2021-10.iscsi:", "Pool-0", name)
    assert re.match(r"^iqn\.2021-10\.iscsi:pool-0:[a-z0-9.:-]+$", iqn)


def test_cut_target_names_stay_apart():
    long = "vm-100-disk-" + "0" * 250
    names = {naming.target_name("iqn.2021-10.iscsi:", "Pool-0", long + c)
             for c in "abc"}
    assert len(names) == 3
    assert all(len(n) == naming.MAX_IQN for n in names)


def test_a_target_prefix_leaving_no_room_is_refused():
    from jdss.errors import ConfigError
    with pytest.raises(ConfigError, match="target_prefix"):
        naming.target_name("iqn.2021-10.x:" + "a" * 220, "Pool-0", "v")


@pytest.mark.parametrize("names, expected", [
    ([], "vm-100-disk-0"),
    (["vm-100-disk-0", "vm-100-disk-2"], "vm-100-disk-1"),
    # the number as written, as Proxmox compares it: 01 does not hold 1
    (["vm-100-disk-0", "vm-100-disk-01"], "vm-100-disk-1"),
    (["vm-100-disk-0", "base-100-disk-1"], "vm-100-disk-2"),
    # other guests, other kinds of volume
    (["vm-1000-disk-0", "vm-10-disk-0", "vm-100-state-s1",
      "vm-100-cloudinit"], "vm-100-disk-0"),
    # anywhere in the name, as Proxmox's unanchored match
    (["base-7-disk-0/vm-100-disk-0"], "vm-100-disk-1"),
])
def test_next_disk_name_as_proxmox_counts(names, expected):
    assert naming.next_disk_name(names, 100) == expected


def test_no_next_disk_name_when_all_are_taken():
    names = [f"vm-5-disk-{n}" for n in range(naming.MAX_DISKS_PER_GUEST)]
    assert naming.next_disk_name(names, 5) is None
