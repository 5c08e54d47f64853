"""Volumes named by older releases (``vb_<base32>``) are addressable by
every command under the name they are listed with, and one Proxmox name
never maps to two appliance volumes at once."""

import pytest

from jdss import errors, naming
from jdss.transport import Transport

G = 1 << 30


class Recording(Transport):
    def connect(self, properties):
        return f"{properties['target_iqn']}/{properties['target_lun']}"

    def disconnect(self, properties):
        pass

    def path(self, properties):
        return f"{properties['target_iqn']}/{properties['target_lun']}"

    def initiator_name(self):
        return "iqn.2024-01.node:a"


@pytest.fixture
def legacy(storage):
    """``my.disk`` and ``vm-7-disk-0`` as an older release named them."""
    for name in ("my.disk", "vm-7-disk-0"):
        storage.backend.create_volume("vb_" + naming.b32encode(name), G,
                                      True, "16K")
    return storage


def test_listed_names_work_with_every_command(legacy):
    storage = legacy
    assert [v["name"] for v in storage.list_volumes()] == \
        ["my.disk", "vm-7-disk-0"]
    aname = "vb_" + naming.b32encode("vm-7-disk-0")
    name = "vm-7-disk-0"
    assert storage.volume(name)["appliance_name"] == aname
    assert storage.resize_volume(name, 2 * G)["size"] == 2 * G
    assert storage.create_snapshot(name, "s1")["name"] == "s1"
    storage.create_snapshot(name, "s2")
    assert [s["name"] for s in storage.list_snapshots(name)] == ["s1", "s2"]
    assert storage.rollback_check(name, "s1")["blockers"] == ["s2"]
    assert storage.rollback(name, "s1", force=True)["destroyed"] == ["s2"]
    clone = storage.clone_volume(name, "vm-8-disk-0", snapshot="s1")
    assert clone["origin"] == "vm-7-disk-0@s1"
    export = storage.create_target(name)
    assert storage.target(name) == export
    transport = Recording(storage.config)
    attached = storage.attach_volume(name, transport)
    assert attached["target"] == export["target"]
    assert storage.volume_path(name, transport)["path"] == attached["path"]
    snap = storage.attach_volume(name, transport, snapshot="s1")
    storage.detach_volume(name, transport, snapshot="s1")
    assert snap["target"] != export["target"]
    storage.detach_volume(name, transport)
    with pytest.raises(errors.NotFound, match="not exported"):
        storage.target(name)
    storage.delete_volume("vm-8-disk-0")
    storage.delete_snapshot(name, "s1")
    renamed = storage.rename_volume(name, "vm-9-disk-0")
    assert renamed["appliance_name"] == "v_vm-9-disk-0"
    storage.delete_volume("my.disk")
    storage.delete_volume("vm-9-disk-0")
    assert storage.list_volumes() == []


def test_one_name_never_maps_to_two_volumes(legacy):
    storage = legacy
    for make in (lambda: storage.create_volume("vm-7-disk-0", G),
                 lambda: storage.create_volume("my.disk", G),
                 lambda: storage.clone_volume("my.disk", "vm-7-disk-0"),
                 lambda: storage.rename_volume("my.disk", "vm-7-disk-0")):
        with pytest.raises(errors.AlreadyExists, match="older release"):
            make()
    names = sorted(v.name for v in storage.backend.list_volumes())
    assert names == sorted("vb_" + naming.b32encode(n)
                           for n in ("my.disk", "vm-7-disk-0"))


def test_missing_names_say_so(legacy):
    with pytest.raises(errors.NotFound, match="volume 'nope' not found"):
        legacy.volume("nope")
    with pytest.raises(errors.NotFound, match="volume 'nope' not found"):
        legacy.create_snapshot("nope", "s1")
    with pytest.raises(errors.NotFound, match="snapshot 'x'"):
        legacy.delete_snapshot("vm-7-disk-0", "x")
    with pytest.raises(errors.NotFound, match="volume 'nope' not found"):
        legacy.create_target("nope")
    assert [t.name for t in legacy.backend.list_targets()] == []


def test_a_name_made_twice_before_is_listed_once(storage, caplog):
    backend = storage.backend
    backend.create_volume("v_dup", G, True, "16K")
    backend.create_volume("vb_" + naming.b32encode("dup"), 2 * G, True,
                          "16K")
    (view,) = storage.list_volumes()
    assert (view["name"], view["appliance_name"]) == ("dup", "v_dup")
    assert "exists as" in caplog.text
    assert storage.volume("dup")["size"] == G


def test_forms_that_no_command_can_reach_are_not_listed(storage):
    backend = storage.backend
    plain = "vh_abc_" + naming.b32encode("abc")    # vh_ of a plain name
    backend.create_volume(plain, G, True, "16K")
    backend.create_volume("vb_" + naming.b32encode("a/b"), G, True, "16K")
    assert storage.list_volumes() == []


def test_cli_reaches_a_listed_older_name(cli, config_file):
    from jdss import config as jconfig
    from jdss import drivers
    cfg = jconfig.load(str(config_file))
    drivers.load_backend(cfg).create_volume(
        "vb_" + naming.b32encode("vm-5-disk-0"), G, True, "16K")
    listed = cli("volume", "list", "-f", "json").json()
    assert [v["name"] for v in listed] == ["vm-5-disk-0"]
    for args in (("volume", "show", "vm-5-disk-0"),
                 ("snapshot", "create", "vm-5-disk-0", "s1"),
                 ("snapshot", "list", "vm-5-disk-0"),
                 ("target", "create", "vm-5-disk-0"),
                 ("target", "show", "vm-5-disk-0"),
                 ("target", "delete", "vm-5-disk-0"),
                 ("snapshot", "rollback", "vm-5-disk-0", "s1"),
                 ("snapshot", "delete", "vm-5-disk-0", "s1"),
                 ("volume", "delete", "vm-5-disk-0")):
        result = cli(*args)
        assert result.code == 0, (args, result.err)
    assert cli("volume", "list", "-f", "json").json() == []
