"""The pool model answers like the appliance: records and error shapes."""

import re
import time

import pytest

from jdss import errors
from jdss.backends import appliance
from jdss.backends.model import PoolModel, new_state

G = 1 << 30


@pytest.fixture
def model():
    return PoolModel(new_state("Pool-0", 10 * G))


@pytest.fixture
def older():
    return PoolModel(new_state("Pool-0", 10 * G), firmware="older")


def raises(exc_type, func, *args, **kwargs):
    """Call ``func``; its ApplianceError must map to ``exc_type``."""
    with pytest.raises(appliance.ApplianceError) as info:
        func(*args, **kwargs)
    error = info.value
    mapped = appliance.to_jdss_error(error.status, error.cls, error.errno,
                                     error.message)
    assert isinstance(mapped, exc_type), (error.message, mapped)
    return error


def test_records_use_appliance_formats(model):
    model.create_volume("v_a", str(G), sparse=False, blocksize="16K")
    record = model.volume_record("v_a")
    assert record["volsize"] == str(G) and record["full_name"] == "Pool-0/v_a"
    assert record["refreservation"] == str(G)
    assert model.pool_record()["available"] == str(9 * G)
    model.create_snapshot("v_a", "s_1")
    snap = model.snapshot_records("v_a")[0]
    assert set(snap) == {"name", "properties"}      # newer: nested, no clones
    assert isinstance(snap["properties"]["creation"], int)
    assert snap["properties"]["volsize"] == str(G)
    assert snap["properties"]["guid"].isdigit()


def test_older_firmware_snapshots_are_flat_with_text_times(older):
    older.create_volume("v_a", G)
    older.create_snapshot("v_a", "s_1")
    older.clone("v_a", "s_1", "v_b")
    snap = older.snapshot_records("v_a")[0]
    assert "properties" not in snap
    assert re.match(r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}$",
                    snap["creation"])
    assert abs(appliance.parse_snapshot_time(snap["creation"])
               - time.time()) < 5
    assert snap["clones"] == "Pool-0/v_b"


def test_volume_ids_are_stable_and_unique(model):
    for name in ("v_a", "v_b", "v_c"):
        model.create_volume(name, G)
    ids = {model.volume_record(n)["default_scsi_id"] for n in model.volumes}
    assert len(ids) == 3 and all(re.match(r"^[0-9a-f]{16}$", i) for i in ids)
    before = model.volume_record("v_a")
    model.rename_volume("v_a", "v_z")
    after = model.volume_record("v_z")
    assert after["default_scsi_id"] == before["default_scsi_id"]
    assert after["san:volume_id"] == before["san:volume_id"]


def test_ids_of_states_older_than_them_are_stable(model):
    model.create_volume("v_a", G)
    del model.volumes["v_a"]["scsi_id"], model.volumes["v_a"]["volume_id"]
    first = model.volume_record("v_a")["default_scsi_id"]
    assert model.volume_record("v_a")["default_scsi_id"] == first
    model.create_target("iqn.2021-10.iscsi:a")
    model.add_lun("iqn.2021-10.iscsi:a", "v_a")
    assert model.lun_record("iqn.2021-10.iscsi:a", "v_a")["scsi_id"] == first


def test_provisioning_changes_the_reservation(model):
    model.create_volume("v_a", 4 * G, sparse=True)
    assert model.volume_record("v_a")["refreservation"] == "0"
    model.set_provisioning("v_a", "thick")
    assert model.volume_record("v_a")["refreservation"] == str(4 * G)
    assert model.pool_record()["available"] == str(6 * G)
    model.create_volume("v_b", 8 * G, sparse=True)
    raises(errors.NoSpace, model.set_provisioning, "v_b", "thick")
    model.set_provisioning("v_a", "thin")
    assert model.pool_record()["available"] == str(10 * G)
    raises(errors.InvalidInput, model.set_provisioning, "v_a", "fat")


def test_snapshot_orders(model):
    model.create_volume("v_a", G)
    names = [f"s_{n}" for n in range(8)]
    for name in names:
        model.create_snapshot("v_a", name)
    assert model.snapshot_names("v_a") == names
    assert model.snapshot_names("v_a", "reverse") == names[::-1]
    shuffled = model.snapshot_names("v_a", "random")
    assert sorted(shuffled) == names and shuffled != names
    assert model.snapshot_names("v_a", "random") == shuffled    # stable


def test_missing_volume_message(model):
    error = raises(errors.NotFound, model.volume_record, "v_x")
    assert error.message == ("Zfs resource: Pool-0/v_x not found in this "
                             "collection.")
    assert error.errno == 1


def test_exists(model, older):
    model.create_volume("v_a", G)
    error = raises(errors.AlreadyExists, model.create_volume, "v_a", G)
    assert error.status == 409 and error.errno == 5
    older.create_volume("v_a", G)
    error = raises(errors.AlreadyExists, older.create_volume, "v_a", G)
    assert error.errno == "5"                       # a string, sometimes
    model.create_snapshot("v_a", "s_1")
    error = raises(errors.AlreadyExists, model.create_snapshot, "v_a", "s_1")
    assert error.status == 500 and error.errno == 5


def test_no_space_message(model):
    error = raises(errors.NoSpace, model.create_volume, "v_a", 11 * G,
                   sparse=False)
    assert error.message == ("New zvol size(11811160064) exceeds available "
                             "space on pool Pool-0(10737418240).")


def test_volsize_must_be_block_multiple(model):
    raises(errors.BackendError, model.create_volume, "v_a", 1000)


def test_volume_with_children(model):
    model.create_volume("v_a", G)
    model.create_snapshot("v_a", "s_1")
    error = raises(errors.Busy, model.delete_volume, "v_a")
    assert error.message.startswith("cannot destroy 'Pool-0/v_a': volume has "
                                    "children")
    assert "Pool-0/v_a@s_1" in error.message
    model.clone("v_a", "s_1", "v_b")
    error = raises(errors.Busy, model.delete_volume, "v_a",
                   recursively_children=True)
    assert error.message == ("In order to delete a zvol, you must delete "
                             "all of its clones first.")
    assert error.status == 500
    assert error.cls == "opene.storage.zfs.ZfsOeError"
    raises(errors.Busy, model.delete_snapshot, "v_a", "s_1")


def test_older_firmware_names_its_zfs_error_class_differently(older):
    older.create_volume("v_a", G)
    older.create_snapshot("v_a", "s_1")
    older.clone("v_a", "s_1", "v_b")
    error = raises(errors.Busy, older.delete_volume, "v_a",
                   recursively_children=True)
    assert error.cls == "opene.storage.zfs.zfs.ZfsOeError"


def test_clone_exists_is_a_zfs_error(model):
    model.create_volume("v_a", G)
    model.create_snapshot("v_a", "s_1")
    model.create_volume("v_b", G)
    error = raises(errors.AlreadyExists, model.clone, "v_a", "s_1", "v_b")
    assert error.errno == 100


def test_appliance_rollback_destroys_newer_snapshots_and_clones(model):
    model.create_volume("v_a", G)
    for snap in ("s_1", "s_2", "s_3"):
        model.create_snapshot("v_a", snap)
    model.clone("v_a", "s_3", "v_c")
    assert model.rollback_record("v_a", "s_1") == {"snapshots": 2,
                                                   "clones": 1}
    model.rollback("v_a", "s_1")
    assert list(model.volumes["v_a"]["snapshots"]) == ["s_1"]
    assert "v_c" not in model.volumes


def test_lun_rules(model):
    model.create_volume("v_a", G)
    model.create_target("iqn.2021-10.iscsi:a")
    model.create_target("iqn.2021-10.iscsi:b")
    model.add_lun("iqn.2021-10.iscsi:a", "v_a", 0)
    error = raises(errors.Busy, model.add_lun, "iqn.2021-10.iscsi:b", "v_a",
                   0)
    assert error.message == "Volume v_a is already used."
    raises(errors.AlreadyExists, model.create_target, "iqn.2021-10.iscsi:a")
    raises(errors.NotFound, model.delete_target, "iqn.2021-10.iscsi:zz")
    raises(errors.InvalidInput, model.create_target, "not an iqn")


def test_lun_records_and_owners(model):
    model.create_volume("v_a", G)
    model.create_target("iqn.2021-10.iscsi:a")
    model.add_lun("iqn.2021-10.iscsi:a", "v_a", 3, "wb")
    lun = model.lun_record("iqn.2021-10.iscsi:a", "v_a")
    assert lun == {"name": "v_a", "lun": 3, "mode": "wb",
                   "scsi_id": model.volume_record("v_a")["default_scsi_id"]}
    (owner,) = model.lun_owner("v_a")
    assert owner["pool"] == "Pool-0" and owner["lun"] == lun
    assert owner["iscsi_target"]["name"] == "iqn.2021-10.iscsi:a"
    assert "target" not in owner
    model.create_volume("v_b", G)
    raises(errors.InvalidInput, model.add_lun, "iqn.2021-10.iscsi:a", "v_b",
           4, "rw")


def test_target_fields_and_vips(tmp_path):
    vips = [{"name": "vip0", "address": "192.0.2.1", "interface": "eth0"}]
    model = PoolModel(new_state("Pool-0", G), vips=vips)
    body = {"name": "iqn.2021-10.iscsi:a", "active": True,
            "vip_allowed_portals": {"enabled": True,
                                    "assigned_vips": ["vip0"]}}
    model.check_target_body(body, creating=True)
    model.create_target(**body)
    assert model.target_record("iqn.2021-10.iscsi:a")[
        "vip_allowed_portals"] == {"enabled": True, "assigned_vips": ["vip0"]}
    error = raises(errors.InvalidInput, model.check_target_body,
                   {"name": "x", "colour": "red"}, creating=True)
    assert error.message == ("Additional properties are not allowed "
                             "('colour' was unexpected)")
    raises(errors.InvalidInput, model.check_target_body,
           {"vip_allowed_portals": {"enabled": True,
                                    "assigned_vips": ["vip9"]}},
           creating=False)
    old = PoolModel(new_state("Pool-0", G), firmware="older",
                    vip_portals=False)
    error = raises(errors.InvalidInput, old.check_target_body, body,
                   creating=True)
    assert error.message == ("Additional properties are not allowed "
                             "('vip_allowed_portals' was unexpected)")
    mapped = appliance.to_jdss_error(error.status, error.cls, error.errno,
                                     error.message)
    assert isinstance(mapped, appliance.FieldRefused)
    assert mapped.fields == ["vip_allowed_portals"]
    old.create_target("iqn.2021-10.iscsi:a")
    assert "vip_allowed_portals" not in old.target_record(
        "iqn.2021-10.iscsi:a")


def test_chap_rules(model):
    model.create_target("iqn.2021-10.iscsi:a")
    raises(errors.InvalidInput, model.add_user, "iqn.2021-10.iscsi:a", "-x",
           "longenoughpassword")
    raises(errors.InvalidInput, model.add_user, "iqn.2021-10.iscsi:a", "u",
           "short")
    raises(errors.InvalidInput, model.add_user, "iqn.2021-10.iscsi:a", "u",
           "has spaces in it!!")
    model.add_user("iqn.2021-10.iscsi:a", "user_1", "Good-pass_word1")


def test_share_rules(model):
    model.create_nas_volume("content", G)
    model.create_share("content", "Pool-0/content")
    assert model.share_record("content")["real_path"] == "/Pool-0/content"
    error = raises(errors.AlreadyExists, model.create_share, "content",
                   "Pool-0/content")
    assert error.errno == 1            # the appliance really says errno 1
    raises(errors.Busy, model.delete_nas_volume, "content")
    error = raises(errors.NotFound, model.delete_share, "other")
    assert (error.cls, error.message) == ("werkzeug.exceptions.NotFound",
                                          "Share other not exists.")
    raises(errors.AlreadyExists, model.create_volume, "content", G)


def test_nas_snapshots_and_clones(model, older):
    model.create_nas_volume("data", G)
    model.create_nas_snapshot("data", "1_s")
    raises(errors.AlreadyExists, model.create_nas_snapshot, "data", "1_s")
    model.create_nas_clone("data", "1_s", "data-clone")
    assert model.nas_volume_record("data-clone")["origin"] == \
        "Pool-0/data@1_s"
    assert [r["name"] for r in model.nas_clone_records("data", "1_s")] == \
        ["data-clone"]
    raises(errors.Busy, model.delete_nas_snapshot, "data", "1_s")
    error = raises(errors.NotFound, model.delete_nas_clone, "data", "1_s",
                   "other")
    assert (error.cls, error.message) == ("werkzeug.exceptions.NotFound",
                                          "Clone other not exists")
    model.delete_nas_clone("data", "1_s", "data-clone")
    model.delete_nas_snapshot("data", "1_s")
    error = raises(errors.NotFound, model.delete_nas_volume, "gone")
    assert (error.status, error.cls) == (404, appliance.NOT_FOUND_CLASS)
    error = raises(errors.NotFound, older.delete_nas_volume, "gone")
    assert (error.status, error.cls) == (500, appliance.NOT_FOUND_CLASS)


@pytest.mark.parametrize("status, cls, errno, message, expected", [
    (401, None, None, "401 unauthorized", errors.AuthFailed),
    (500, appliance.ZFS_CMD_CLASS, "1", "cannot open 'P/v': dataset does not "
     "exist", errors.NotFound),
    (404, "werkzeug.exceptions.NotFound", None, "gone", errors.NotFound),
    (500, appliance.ZFS_CMD_CLASS, 1000, "anything", errors.Busy),
    (400, appliance.VALIDATION_CLASS, 22, "bad field", errors.InvalidInput),
    (500, "x.y.Z", 7, "something odd", errors.BackendError),
    (500, "opene.cfgparser.CfgParserError", 13, "busy", appliance.Transient),
    (500, None, "13", "config", appliance.Transient),
    (500, "opene.tools.scstadmin.ScstAdminError", None, "scst",
     appliance.Transient),
    (500, "exceptions.OSError", None, "I/O", errors.BackendError),
    (500, None, "not-a-number", "", errors.BackendError),
])
def test_error_mapping(status, cls, errno, message, expected):
    assert isinstance(appliance.to_jdss_error(status, cls, errno, message),
                      expected)
