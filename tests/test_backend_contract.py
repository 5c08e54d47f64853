"""The contract every backend honours, seen through the Storage service.

Parametrised by backend (see ``BACKENDS`` in conftest): the REST backend
against the emulator joins with identical expectations.
"""

import pytest

from jdss import errors

G = 1 << 30


def test_pool_reports_capacity(storage):
    pool = storage.pool()
    assert pool["name"] == "Pool-0"
    assert pool["size"] == 100 * G
    assert pool["free"] == 100 * G and pool["used"] == 0
    assert pool["health"] == "ONLINE"


def test_create_show_list(storage):
    view = storage.create_volume("vm-100-disk-0", "10G", thin=True)
    assert view["name"] == "vm-100-disk-0"
    assert view["appliance_name"] == "v_vm-100-disk-0"
    assert view["size"] == 10 * G and view["thin"] is True
    assert view["block_size"] == "16K" and view["origin"] is None
    assert storage.volume("vm-100-disk-0") == view
    assert [v["name"] for v in storage.list_volumes()] == ["vm-100-disk-0"]


def test_odd_names_are_stored_as_vh(storage):
    view = storage.create_volume("content.pool-0", "1G")
    assert view["appliance_name"].startswith("vh_content_pool-0_")
    assert [v["name"] for v in storage.list_volumes()] == ["content.pool-0"]


def test_size_is_rounded_up_to_block_size(storage):
    view = storage.create_volume("vm-1-disk-0", 100000, block_size="64K")
    assert view["size"] == 131072 and view["block_size"] == "64K"


def test_unknown_block_size_is_refused(storage):
    with pytest.raises(errors.InvalidInput, match="block size"):
        storage.create_volume("vm-1-disk-0", "1G", block_size="24K")
    assert storage.list_volumes() == []


def test_thick_volumes_reserve_space_thin_do_not(storage):
    storage.create_volume("thick", "30G", thin=False)
    storage.create_volume("thin", "500G", thin=True)
    pool = storage.pool()
    assert pool["used"] == 30 * G and pool["free"] == 70 * G


def test_thick_beyond_free_space_fails_and_leaves_nothing(storage):
    storage.create_volume("big", "80G", thin=False)
    with pytest.raises(errors.NoSpace, match="'too-big'"):
        storage.create_volume("too-big", "30G", thin=False)
    assert [v["name"] for v in storage.list_volumes()] == ["big"]


def test_thin_provision_default_comes_from_config(make_storage):
    assert make_storage(thin_provision=True).create_volume(
        "a", "1G")["thin"] is True
    assert make_storage(thin_provision=False).create_volume(
        "b", "1G")["thin"] is False


def test_duplicate_and_missing(storage):
    storage.create_volume("vm-1-disk-0", "1G")
    with pytest.raises(errors.AlreadyExists, match="'vm-1-disk-0'"):
        storage.create_volume("vm-1-disk-0", "2G")
    assert storage.volume("vm-1-disk-0")["size"] == G
    with pytest.raises(errors.NotFound, match="'nope'"):
        storage.volume("nope")
    with pytest.raises(errors.NotFound):
        storage.delete_volume("nope")


def test_resize_grows_only(storage):
    storage.create_volume("v", "1G", thin=False)
    assert storage.resize_volume("v", "2G")["size"] == 2 * G
    assert storage.pool()["used"] == 2 * G
    with pytest.raises(errors.InvalidInput, match="only growing"):
        storage.resize_volume("v", "1G")
    assert storage.volume("v")["size"] == 2 * G
    assert storage.resize_volume("v", "2G")["size"] == 2 * G


def test_thick_resize_beyond_space_fails(storage):
    storage.create_volume("v", "60G", thin=False)
    with pytest.raises(errors.NoSpace):
        storage.resize_volume("v", "120G")
    assert storage.volume("v")["size"] == 60 * G


def test_snapshots_listed_oldest_first(storage):
    storage.create_volume("v", "1G")
    for snap in ("a", "b", "c"):
        storage.create_snapshot("v", snap)
    assert [s["name"] for s in storage.list_snapshots("v")] == ["a", "b", "c"]
    with pytest.raises(errors.AlreadyExists, match="snapshot 'a'"):
        storage.create_snapshot("v", "a")
    with pytest.raises(errors.NotFound, match="volume 'w'"):
        storage.create_snapshot("w", "a")
    storage.delete_snapshot("v", "b")
    assert [s["name"] for s in storage.list_snapshots("v")] == ["a", "c"]
    with pytest.raises(errors.NotFound, match="snapshot 'b'"):
        storage.delete_snapshot("v", "b")


def test_delete_with_snapshots_needs_recursive(storage):
    storage.create_volume("v", "1G")
    storage.create_snapshot("v", "s1")
    with pytest.raises(errors.Busy, match="has snapshots: s1"):
        storage.delete_volume("v")
    assert storage.volume("v")
    storage.delete_volume("v", recursive=True)
    assert storage.list_volumes() == []


def test_clones_depend_on_their_snapshot(storage):
    storage.create_volume("base-100-disk-0", "4G")
    storage.create_snapshot("base-100-disk-0", "__base__")
    clone = storage.clone_volume("base-100-disk-0", "vm-101-disk-0",
                                 snapshot="__base__")
    assert clone["origin"] == "base-100-disk-0@__base__"
    assert clone["size"] == 4 * G
    snaps = storage.list_snapshots("base-100-disk-0")
    assert snaps[0]["clones"] == ["vm-101-disk-0"]
    with pytest.raises(errors.Busy, match="has clones: vm-101-disk-0"):
        storage.delete_snapshot("base-100-disk-0", "__base__")
    with pytest.raises(errors.Busy, match="clones"):
        storage.delete_volume("base-100-disk-0", recursive=True)
    storage.delete_volume("vm-101-disk-0")
    storage.delete_volume("base-100-disk-0", recursive=True)
    assert storage.list_volumes() == []


def test_clone_without_snapshot_uses_hidden_snapshot(storage):
    storage.create_volume("src", "1G")
    clone = storage.clone_volume("src", "copy")
    assert clone["origin"].startswith("src@c_")
    assert storage.list_snapshots("src") == []      # hidden
    storage.delete_volume("copy")
    storage.delete_volume("src")                    # hidden snapshot gone
    assert storage.list_volumes() == []


def test_a_renamed_linked_clone_keeps_its_snapshot_and_name(storage):
    """A linked clone handed to another guest still hangs from the hidden
    snapshot named after its first name: a new clone of that first name
    is refused with the holder named, and the next free disk name of the
    guest is taken instead; nothing is deleted or left behind."""
    storage.create_volume("base-100-disk-0", "1G")
    storage.clone_volume("base-100-disk-0", "vm-101-disk-0")
    storage.rename_volume("vm-101-disk-0", "vm-102-disk-0")
    with pytest.raises(errors.NameHeld,
                       match="held by 'vm-102-disk-0'.*another name"):
        storage.clone_volume("base-100-disk-0", "vm-101-disk-0")
    made = storage.for_next_disk("101", lambda name: storage.clone_volume(
        "base-100-disk-0", name))
    assert made["name"] == "vm-101-disk-1"
    assert sorted(v["name"] for v in storage.list_volumes()) == [
        "base-100-disk-0", "vm-101-disk-1", "vm-102-disk-0"]
    storage.delete_volume("vm-102-disk-0")
    storage.delete_volume("vm-101-disk-1")
    storage.delete_volume("base-100-disk-0")   # both hidden snapshots gone
    assert storage.list_volumes() == []


def test_a_clone_made_meanwhile_under_the_same_name_is_a_plain_refusal(
        storage, monkeypatch):
    """Another maker (outside jdss's name lock) makes the clone between
    the check for it and the renewal of its snapshot: the name is taken,
    not held by a renamed clone."""
    storage.create_volume("base-100-disk-0", "1G")
    storage.clone_volume("base-100-disk-0", "vm-101-disk-0")
    get_volume = storage.backend.get_volume

    def not_yet(name):
        if name == "v_vm-101-disk-0":
            raise errors.NotFound("not yet")
        return get_volume(name)

    monkeypatch.setattr(storage.backend, "get_volume", not_yet)
    with pytest.raises(errors.AlreadyExists) as refused:
        storage.clone_volume("base-100-disk-0", "vm-101-disk-0")
    assert type(refused.value) is errors.AlreadyExists
    assert str(refused.value) == "volume 'vm-101-disk-0' already exists"


def test_clone_errors_leave_nothing_behind(storage):
    storage.create_volume("src", "1G")
    storage.create_volume("taken", "1G")
    with pytest.raises(errors.AlreadyExists, match="'taken'"):
        storage.clone_volume("src", "taken")
    with pytest.raises(errors.NotFound, match="snapshot 'nope'"):
        storage.clone_volume("src", "new", snapshot="nope")
    with pytest.raises(errors.NotFound, match="volume 'ghost'"):
        storage.clone_volume("ghost", "new")
    storage.delete_volume("src")            # no hidden snapshot was left
    assert [v["name"] for v in storage.list_volumes()] == ["taken"]


def test_rollback_rules(storage):
    storage.create_volume("v", "1G")
    for snap in ("s1", "s2", "s3"):
        storage.create_snapshot("v", snap)
    check = storage.rollback_check("v", "s1")
    assert check["blockers"] == ["s2", "s3"] and check["clones"] == []
    with pytest.raises(errors.RollbackBlocked) as info:
        storage.rollback("v", "s1")
    assert info.value.blockers == ["s2", "s3"]
    assert "s2, s3" in str(info.value)
    assert len(storage.list_snapshots("v")) == 3
    assert storage.rollback("v", "s3")["destroyed"] == []
    assert storage.rollback("v", "s1", force=True)["destroyed"] == \
        ["s2", "s3"]
    assert [s["name"] for s in storage.list_snapshots("v")] == ["s1"]
    with pytest.raises(errors.NotFound, match="snapshot 's9'"):
        storage.rollback("v", "s9")


def test_rollback_never_destroys_clones(storage):
    storage.create_volume("v", "1G")
    storage.create_snapshot("v", "s1")
    storage.create_snapshot("v", "s2")
    storage.clone_volume("v", "child", snapshot="s2")
    with pytest.raises(errors.Busy, match="child"):
        storage.rollback("v", "s1", force=True)
    assert storage.volume("child")
    assert len(storage.list_snapshots("v")) == 2


def test_rename_carries_snapshots_and_clones(storage):
    storage.create_volume("vm-100-disk-0", "1G")
    storage.create_snapshot("vm-100-disk-0", "s1")
    storage.clone_volume("vm-100-disk-0", "child", snapshot="s1")
    view = storage.rename_volume("vm-100-disk-0", "vm-200-disk-0")
    assert view["name"] == "vm-200-disk-0"
    assert [s["name"] for s in storage.list_snapshots("vm-200-disk-0")] == \
        ["s1"]
    assert storage.volume("child")["origin"] == "vm-200-disk-0@s1"
    with pytest.raises(errors.NotFound):
        storage.volume("vm-100-disk-0")
    storage.create_volume("other", "1G")
    with pytest.raises(errors.AlreadyExists, match="'other'"):
        storage.rename_volume("vm-200-disk-0", "other")


def test_export_as_target(storage):
    storage.create_volume("vm-100-disk-0", "1G")
    with pytest.raises(errors.NotFound, match="not exported"):
        storage.target("vm-100-disk-0")
    export = storage.create_target("vm-100-disk-0")
    assert export["target"] == "iqn.2021-10.iscsi:pool-0:vm-100-disk-0"
    assert export["lun"] == 0
    assert export["portals"] == ["127.0.0.1:3260"]
    assert export["chap_user"] is None
    assert storage.create_target("vm-100-disk-0") == export   # idempotent
    assert storage.target("vm-100-disk-0") == export
    with pytest.raises(errors.Busy, match="target delete"):
        storage.delete_volume("vm-100-disk-0")
    with pytest.raises(errors.Busy):
        storage.rename_volume("vm-100-disk-0", "x")
    storage.delete_target("vm-100-disk-0")
    storage.delete_target("vm-100-disk-0")                   # idempotent
    storage.delete_volume("vm-100-disk-0")
    with pytest.raises(errors.NotFound):
        storage.create_target("vm-100-disk-0")


def test_export_portals_follow_config(make_storage):
    storage = make_storage(rest_api_addresses=["127.0.0.1", "127.0.0.2"],
                           target_port=3261, target_prefix="iqn.2000-01.t:")
    storage.create_volume("Odd_Name", "1G")
    export = storage.create_target("Odd_Name")
    assert export["portals"] == ["127.0.0.1:3261", "127.0.0.2:3261"]
    assert export["target"].startswith("iqn.2000-01.t:pool-0:vh:")


def test_export_with_chap(make_storage, tmp_path):
    storage = make_storage(chap_enabled=True, chap_user="pve")
    storage.create_volume("v", "1G")
    export = storage.create_target("v")
    assert export["chap_user"] == "pve"
    assert len(export["chap_password"]) >= 12
    key = tmp_path / "priv" / "jdss-Pool-0.chap"
    assert key.stat().st_mode & 0o777 == 0o600
    again = make_storage(chap_enabled=True, chap_user="pve")
    assert again.target("v")["chap_password"] == export["chap_password"]


def test_failed_export_is_undone(make_storage, monkeypatch):
    storage = make_storage(chap_enabled=True)
    storage.create_volume("v", "1G")

    def refuse(*_args):
        raise errors.InvalidInput("refused by test")

    monkeypatch.setattr(storage.backend, "add_chap_user", refuse)
    with pytest.raises(errors.InvalidInput):
        storage.create_target("v")
    with pytest.raises(errors.NotFound, match="not exported"):
        storage.target("v")
    monkeypatch.undo()
    assert storage.create_target("v")["lun"] == 0


def test_nas_volumes_and_shares(storage):
    view = storage.create_nas_volume("proxmox-content-jdss-pool-0", "100G")
    assert view["quota"] == 100 * G
    with pytest.raises(errors.AlreadyExists):
        storage.create_nas_volume("proxmox-content-jdss-pool-0", "1G")
    with pytest.raises(errors.NotFound, match="not shared"):
        storage.share("proxmox-content-jdss-pool-0")
    share = storage.create_share("proxmox-content-jdss-pool-0")
    assert share["path"] == "Pool-0/proxmox-content-jdss-pool-0"
    assert share["exports"] == ["127.0.0.1:/Pool-0/proxmox-content-jdss-pool-0"]
    assert storage.create_share("proxmox-content-jdss-pool-0") == share
    assert [s["name"] for s in storage.list_shares()] == [share["name"]]
    storage.delete_nas_volume("proxmox-content-jdss-pool-0")
    assert storage.list_nas_volumes() == [] and storage.list_shares() == []
    with pytest.raises(errors.NotFound):
        storage.create_share("proxmox-content-jdss-pool-0")


def test_nas_volume_grows_and_never_shrinks(storage):
    storage.create_nas_volume("content", "10G")
    assert storage.resize_nas_volume("content", "20G")["quota"] == 20 * G
    assert storage.nas_volume("content")["quota"] == 20 * G
    assert storage.resize_nas_volume("content", "20G")["quota"] == 20 * G
    with pytest.raises(errors.InvalidInput, match="only growing"):
        storage.resize_nas_volume("content", "5G")
    assert storage.nas_volume("content")["quota"] == 20 * G
    with pytest.raises(errors.NotFound):
        storage.resize_nas_volume("absent", "1G")


def test_pools_do_not_see_each_other(make_storage):
    first = make_storage(pool="Pool-0")
    second = make_storage(pool="Pool-1")
    first.create_volume("v", "1G")
    assert second.list_volumes() == []
    second.create_volume("v", "2G")
    assert first.volume("v")["size"] == G
    # one volume name in two pools: two targets, never one
    one, two = first.create_target("v"), second.create_target("v")
    assert one["target"] != two["target"]
    assert first.backend.target_luns(one["target"]) == {"v_v": 0}
    assert second.backend.target_luns(two["target"]) == {"v_v": 0}


def test_sizes_past_the_largest_volume_after_rounding(storage):
    from jdss.sizes import MAX_SIZE
    with pytest.raises(errors.InvalidInput, match="rounded up"):
        storage.create_volume("v", MAX_SIZE, block_size="1M")
    storage.create_volume("v", "1G")
    with pytest.raises(errors.InvalidInput, match="rounded up"):
        storage.resize_volume("v", MAX_SIZE)
    assert [v["size"] for v in storage.list_volumes()] == [G]


def test_clones_get_their_provisioning(storage):
    storage.create_volume("src", "4G", thin=True)
    storage.create_snapshot("src", "s1")
    thick = storage.clone_volume("src", "thick", snapshot="s1", thin=False)
    thin = storage.clone_volume("src", "thin", snapshot="s1", thin=True)
    assert (thick["thin"], thin["thin"]) == (False, True)
    assert storage.pool()["used"] == 4 * G


def test_a_clone_that_cannot_get_its_provisioning_is_removed(storage,
                                                             monkeypatch):
    storage.create_volume("src", "4G", thin=True)

    def refuse(name, sparse):
        raise errors.NoSpace("New zvol size exceeds available space")

    monkeypatch.setattr(storage.backend, "set_provisioning", refuse)
    with pytest.raises(errors.NoSpace, match="'copy' could not be made "
                                             "thick, so it was removed"):
        storage.clone_volume("src", "copy", thin=False)
    assert [v["name"] for v in storage.list_volumes()] == ["src"]
    monkeypatch.undo()
    storage.delete_volume("src")          # no hidden snapshot was left
