"""Targets converge to the configuration, and are never shared by surprise.

A reused target (this pool's, or one of the original plugin's per-guest
targets holding several LUNs) gets the configured CHAP requirement and
user; new targets are bound to the pool's VIPs where the firmware can; a
target name held by another volume is refused, never shared.
"""

import logging

import pytest

from jdss import errors
from tests.emulator import Emulator

G = 1 << 30
PREFIX = "iqn.2021-10.iscsi:"


def test_reuse_converges_chap(make_storage):
    plain = make_storage()
    plain.create_volume("vm-100-disk-0", G)
    iqn = plain.create_target("vm-100-disk-0")["target"]
    backend = plain.backend
    assert backend.get_target(iqn).chap is False

    chap = make_storage(chap_enabled=True, chap_user="pve")
    export = chap.create_target("vm-100-disk-0")
    target = backend.get_target(iqn)
    assert target.chap is True and list(target.users) == ["pve"]
    assert export["chap_user"] == "pve"
    assert export["chap_password"] == chap._chap_password(iqn)

    backend.add_chap_user(iqn, "intruder", "some-password-1")
    chap.create_target("vm-100-disk-0")
    assert list(backend.get_target(iqn).users) == ["pve"]

    again = make_storage(chap_enabled=False)
    assert again.create_target("vm-100-disk-0")["chap_user"] is None
    assert backend.get_target(iqn).chap is False
    assert backend.target_luns(iqn) == {"v_vm-100-disk-0": 0}


def test_original_plugins_group_target_is_reused_and_kept(
        make_storage, caplog):
    """The original plugin's target for guest 100 holds two disks; jdss
    attaches one of them through it and, on detach, removes only its
    LUN."""
    storage = make_storage(chap_enabled=True, chap_user="pve")
    backend = storage.backend
    group = PREFIX + "vm-100-0"
    for n in range(2):
        storage.create_volume(f"vm-100-disk-{n}", G)
    backend.create_target(group, True)
    backend.add_lun(group, "v_vm-100-disk-0", 0)
    backend.add_lun(group, "v_vm-100-disk-1", 1)
    backend.add_chap_user(group, "vendor", "vendor-secret-123")
    with caplog.at_level(logging.WARNING):
        export = storage.create_target("vm-100-disk-1")
    assert (export["target"], export["lun"]) == (group, 1)
    assert "also exports v_vm-100-disk-0" in caplog.text
    assert list(backend.get_target(group).users) == ["pve"]
    storage.delete_target("vm-100-disk-1")
    assert backend.target_luns(group) == {"v_vm-100-disk-0": 0}
    assert storage.target("vm-100-disk-0")["target"] == group


def test_a_target_name_held_by_another_volume_is_refused(make_storage):
    storage = make_storage()
    storage.create_volume("vm-1-disk-0", G)
    storage.create_volume("other", G)
    iqn = storage.iqn("vm-1-disk-0")
    storage.backend.create_target(iqn, False)
    storage.backend.add_lun(iqn, "v_other", 0)
    with pytest.raises(errors.Busy) as info:
        storage.create_target("vm-1-disk-0")
    assert "exports other volumes (v_other)" in str(info.value)
    assert storage.backend.target_luns(iqn) == {"v_other": 0}
    with pytest.raises(errors.NotFound, match="not exported"):
        storage.target("vm-1-disk-0")


def test_an_empty_target_left_behind_is_reused(make_storage):
    storage = make_storage(chap_enabled=True)
    storage.create_volume("vm-1-disk-0", G)
    iqn = storage.iqn("vm-1-disk-0")
    storage.backend.create_target(iqn, False)       # an interrupted attach
    export = storage.create_target("vm-1-disk-0")
    assert export["target"] == iqn and export["chap_user"] == "jdss"
    target = storage.backend.get_target(iqn)
    assert target.chap and list(target.users) == ["jdss"]


def emulator_with(tmp_path, tls_cert, **options):
    running = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",),
                       **options)
    return running


def rest_storage(running, tmp_path, **values):
    from jdss import config as jconfig
    from jdss import drivers
    from jdss.storage import Storage
    from tests.conftest import write_config
    path = write_config(tmp_path / "rest.yaml", **running.config(**values))
    cfg = jconfig.load(str(path))
    return Storage(cfg, drivers.load_backend(cfg))


def test_new_and_reused_targets_are_bound_to_the_pools_vips(
        tmp_path, tls_cert):
    running = emulator_with(tmp_path, tls_cert,
                            listens=["127.0.0.2", "127.0.0.3"],
                            vips=["vip-a=127.0.0.2", "vip-b=127.0.0.3"])
    try:
        storage = rest_storage(running, tmp_path)
        storage.create_volume("vm-1-disk-0", G)
        storage.create_volume("vm-2-disk-0", G)
        iqn = storage.create_target("vm-1-disk-0")["target"]
        assert storage.backend.get_target(iqn).vips == ["vip-a", "vip-b"]
        # a target made before binding existed is bound when reused
        old = storage.iqn("vm-2-disk-0")
        storage.backend.create_target(old, False)
        storage.backend.add_lun(old, "v_vm-2-disk-0", 0)
        assert storage.backend.get_target(old).vips == []
        storage.create_target("vm-2-disk-0")
        assert storage.backend.get_target(old).vips == ["vip-a", "vip-b"]
    finally:
        running.stop()


def test_vips_that_are_not_the_portals_are_not_bound(tmp_path, tls_cert):
    running = emulator_with(tmp_path, tls_cert, vips=["vip-a=192.0.2.7"])
    try:
        storage = rest_storage(running, tmp_path)
        storage.create_volume("vm-1-disk-0", G)
        iqn = storage.create_target("vm-1-disk-0")["target"]
        assert storage.backend.get_target(iqn).vips == []
    finally:
        running.stop()


def test_firmware_without_vip_binding_creates_targets_without(tmp_path,
                                                              tls_cert):
    """Error table: ``Additional properties are not allowed
    ('vip_allowed_portals' was unexpected)``: created without, and not
    asked again by the same process."""
    running = emulator_with(tmp_path, tls_cert, firmware="older",
                            no_vip_portals=True, vips=["vip-a=127.0.0.1"])
    try:
        storage = rest_storage(running, tmp_path)
        for n in range(3):
            storage.create_volume(f"vm-{n}-disk-0", G)
            storage.create_target(f"vm-{n}-disk-0")
        statuses = [s for _, m, p, s in running.requests()
                    if m == "POST" and p.endswith("/san/iscsi/targets")]
        assert statuses == ["500", "201", "201", "201"]
        assert len(storage.backend.list_targets()) == 3
        assert all(t.vips is None for t in storage.backend.list_targets())
    finally:
        running.stop()
