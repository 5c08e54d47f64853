"""The pool model answers like the appliance: records and error shapes."""

import pytest

from jdss import errors
from jdss.backends import appliance
from jdss.backends.model import PoolModel, new_state

G = 1 << 30


@pytest.fixture
def model():
    return PoolModel(new_state("Pool-0", 10 * G))


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
    assert snap["clones"] == ""
    assert appliance.parse_snapshot_time(snap["creation"]) > 0


def test_missing_volume_message(model):
    error = raises(errors.NotFound, model.volume_record, "v_x")
    assert error.message == ("Zfs resource: Pool-0/v_x not found in this "
                             "collection.")
    assert error.errno == 1


def test_exists(model):
    model.create_volume("v_a", G)
    error = raises(errors.AlreadyExists, model.create_volume, "v_a", G)
    assert error.status == 409 and error.errno == 5


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
    raises(errors.Busy, model.delete_snapshot, "v_a", "s_1")


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
    error = raises(errors.AlreadyExists, model.create_share, "content",
                   "Pool-0/content")
    assert error.errno == 1            # the appliance really says errno 1
    raises(errors.Busy, model.delete_nas_volume, "content")
    raises(errors.NotFound, model.delete_share, "other")
    raises(errors.AlreadyExists, model.create_volume, "content", G)


@pytest.mark.parametrize("status, cls, errno, message, expected", [
    (401, None, None, "401 unauthorized", errors.AuthFailed),
    (500, appliance.ZFS_CMD_CLASS, "1", "cannot open 'P/v': dataset does not "
     "exist", errors.NotFound),
    (404, "werkzeug.exceptions.NotFound", None, "gone", errors.NotFound),
    (500, appliance.ZFS_CMD_CLASS, 1000, "anything", errors.Busy),
    (400, appliance.VALIDATION_CLASS, 22, "bad field", errors.InvalidInput),
    (500, "x.y.Z", 7, "something odd", errors.BackendError),
    (500, None, "not-a-number", "", errors.BackendError),
])
def test_error_mapping(status, cls, errno, message, expected):
    assert isinstance(appliance.to_jdss_error(status, cls, errno, message),
                      expected)
