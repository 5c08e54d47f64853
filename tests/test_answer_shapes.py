"""One test per row of the REST notes' tables "Answer shapes" and "Errors".

Each test reads the emulator's raw answer (what a real appliance sends, per
the notes) and then what the REST backend makes of it, in both firmware
modes where they differ.
"""

import json
import re
import time

import pytest
import requests

from jdss import config as jconfig
from jdss import drivers, errors
from jdss.backends import appliance
from jdss.storage import Storage
from tests.conftest import write_config
from tests.emulator import PASSWORD, Emulator

G = 1 << 30
IQN = "iqn.2021-10.iscsi:"


@pytest.fixture(params=["newer", "older"])
def appliance_(request, tmp_path, tls_cert):
    """An emulator of either firmware, with two VIPs on Pool-0."""
    running = Emulator(str(tmp_path), *tls_cert, firmware=request.param,
                       vips=["Pool-0/vip0=127.0.0.1",
                             "Pool-0/vip1=198.51.100.10"])
    yield running
    running.stop()


@pytest.fixture
def newer(tmp_path, tls_cert):
    running = Emulator(str(tmp_path), *tls_cert)
    yield running
    running.stop()


def storage_of(emulator, tmp_path, **values):
    path = write_config(tmp_path / "rest.yaml", **emulator.config(**values))
    cfg = jconfig.load(str(path))
    return Storage(cfg, drivers.load_backend(cfg))


def raw(emulator, method, path, body=None):
    """``(status, envelope)`` of one request sent by hand."""
    answer = requests.request(
        method, f"https://127.0.0.1:{emulator.port}/api/v4{path}",
        auth=("admin", PASSWORD), verify=emulator.cert, timeout=10,
        data=None if body is None else json.dumps(body))
    return answer.status_code, (answer.json() if answer.content else None)


def exported(storage, name="vm-1-disk-0"):
    storage.create_volume(name, G)
    return storage.create_target(name)


# Answer shapes -----------------------------------------------------------
def test_lun_owner_records_are_nested(appliance_, tmp_path, cli):
    storage = storage_of(appliance_, tmp_path)
    export = exported(storage)
    status, answer = raw(appliance_, "GET",
                         "/san/iscsi/luns?where=name==v_vm-1-disk-0")
    (record,) = answer["data"]
    assert status == 200 and record["pool"] == "Pool-0"
    assert record["iscsi_target"]["name"] == export["target"]
    assert record["lun"]["lun"] == 0
    assert re.match(r"^[0-9a-f]{16}$", record["lun"]["scsi_id"])
    assert "target" not in record
    # what failed with KeyError: 'target' on real appliances
    config = tmp_path / "rest.yaml"
    shown = cli("target", "show", "vm-1-disk-0", "-f", "json",
                config=config)
    assert shown.code == 0, shown.err
    assert shown.json()["target"] == export["target"]
    assert shown.json()["scsi_id"] == record["lun"]["scsi_id"]
    assert cli("target", "delete", "vm-1-disk-0", config=config).code == 0
    assert raw(appliance_, "GET", "/san/iscsi/luns?where=name=="
               "v_vm-1-disk-0")[1]["data"] == []


def test_flat_lun_owner_records_are_read_too():
    flat = {"name": "v_a", "target": IQN + "a", "lun": 2, "pool": "Pool-0"}
    nested = {"pool": "Pool-0", "iscsi_target": {"name": IQN + "a"},
              "lun": {"name": "v_a", "lun": 2, "scsi_id": "ab"}}
    for record in (flat, nested):
        pool, iqn, lun, _, volume = appliance.lun_owner(record)
        assert (pool, iqn, lun["lun"], volume) == ("Pool-0", IQN + "a", 2,
                                                   "v_a")


def test_target_lists_plain_unless_paged(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    for n in range(3):
        exported(storage, f"vm-{n}-disk-0")
    status, answer = raw(appliance_, "GET", "/pools/Pool-0/san/iscsi/targets")
    assert isinstance(answer["data"], list) and len(answer["data"]) == 3
    status, answer = raw(appliance_, "GET", "/pools/Pool-0/san/iscsi/targets"
                         "?page=0&per_page=2")
    assert answer["data"]["results"] == 3
    assert len(answer["data"]["entries"]) == 2
    before = len(appliance_.requests())
    assert len(storage.backend.list_targets()) == 3
    pages = [p for _, m, p, _ in appliance_.requests()[before:]
             if p.startswith("/api/v4/pools/Pool-0/san/iscsi/targets?")]
    assert pages and all("per_page=25" in p for p in pages)


def test_target_records_carry_vip_portals(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    export = exported(storage)
    _, answer = raw(appliance_, "GET", "/pools/Pool-0/san/iscsi/targets/"
                    + export["target"])
    record = answer["data"]
    assert {"name", "active", "incoming_users_active", "allow_ip",
            "deny_ip", "vip_allowed_portals"} <= set(record)
    assert record["vip_allowed_portals"] == {
        "enabled": True, "assigned_vips": ["vip0", "vip1"]}
    target = storage.backend.get_target(export["target"])
    assert target.vips == ["vip0", "vip1"]


def test_lun_records_carry_mode_and_scsi_id(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("vm-1-disk-0", G)
    storage.create_volume("vm-2-disk-0", G)
    base = "/pools/Pool-0/san/iscsi/targets/" + IQN + "t1"
    raw(appliance_, "POST", "/pools/Pool-0/san/iscsi/targets",
        {"name": IQN + "t1", "active": True})
    status, posted = raw(appliance_, "POST", base + "/luns",
                         {"name": "v_vm-1-disk-0", "lun": 0})
    _, got = raw(appliance_, "GET", base + "/luns/v_vm-1-disk-0")
    raw(appliance_, "POST", base + "/luns",
        {"name": "v_vm-2-disk-0", "lun": 1, "mode": "wb"})
    _, listed = raw(appliance_, "GET", base + "/luns")
    assert status == 201 and posted["data"] == got["data"]
    assert set(got["data"]) == {"name", "lun", "mode", "scsi_id"}
    ids = {r["name"]: r["scsi_id"] for r in listed["data"]}
    assert len(set(ids.values())) == 2                  # unique per pool
    assert {r["mode"] for r in listed["data"]} == {"wt", "wb"}
    assert storage.backend.target_luns(IQN + "t1") == {
        "v_vm-1-disk-0": 0, "v_vm-2-disk-0": 1}
    assert storage.backend.get_volume("v_vm-1-disk-0").scsi_id == \
        ids["v_vm-1-disk-0"]


def test_volume_records_carry_ids(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("vm-1-disk-0", G)
    _, answer = raw(appliance_, "GET", "/pools/Pool-0/volumes/v_vm-1-disk-0")
    record = answer["data"]
    assert re.match(r"^[0-9a-f]{16}$", record["san:volume_id"])
    assert re.match(r"^[0-9a-f]{16}$", record["default_scsi_id"])
    storage.rename_volume("vm-1-disk-0", "vm-2-disk-0")
    _, again = raw(appliance_, "GET", "/pools/Pool-0/volumes/v_vm-2-disk-0")
    assert again["data"]["default_scsi_id"] == record["default_scsi_id"]
    assert storage.backend.get_volume("v_vm-2-disk-0").scsi_id == \
        record["default_scsi_id"]


def test_snapshot_entries_of_each_firmware(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("vm-1-disk-0", G)
    storage.create_snapshot("vm-1-disk-0", "s1")
    storage.clone_volume("vm-1-disk-0", "vm-2-disk-0", snapshot="s1")
    base = "/pools/Pool-0/volumes/v_vm-1-disk-0/snapshots"
    _, listed = raw(appliance_, "GET", base + "?page=0&per_page=100")
    _, one = raw(appliance_, "GET", base + "/s_s1")
    (entry,) = listed["data"]["entries"]
    assert entry == one["data"]
    if appliance_.firmware == "newer":
        assert set(entry) == {"name", "properties"}
        assert isinstance(entry["properties"]["creation"], int)
        assert entry["properties"]["volsize"] == str(G)
        created = entry["properties"]["creation"]
    else:
        assert re.match(r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}$",
                        entry["creation"])
        created = appliance.parse_snapshot_time(entry["creation"])
    (info,) = storage.backend.list_snapshots("v_vm-1-disk-0")
    assert info.creation == created
    _, clones = raw(appliance_, "GET", base + "/s_s1/clones")
    assert [c["name"] for c in clones["data"]] == ["v_vm-2-disk-0"]
    (view,) = storage.list_snapshots("vm-1-disk-0")
    assert view["clones"] == ["vm-2-disk-0"]
    assert view["creation"] == int(created)


@pytest.mark.parametrize("order", ["reverse", "random"])
def test_snapshot_order_is_not_relied_on(tmp_path, tls_cert, order):
    """Listed newest first or in no order: still oldest first, and the
    newer snapshots are worked out from creation times."""
    running = Emulator(str(tmp_path), *tls_cert, snapshot_order=order)
    try:
        storage = storage_of(running, tmp_path)
        storage.create_volume("v", G)
        made = []
        for n in range(6):
            if n in (2, 4):
                time.sleep(1.05)          # ZFS times are whole seconds
            storage.create_snapshot("v", f"s{n}")
            made.append(f"s{n}")
        _, listed = raw(running, "GET", "/pools/Pool-0/volumes/v_v/"
                        "snapshots?page=0&per_page=100")
        served = [e["name"] for e in listed["data"]["entries"]]
        assert served != ["s_" + m for m in made]
        listed = storage.list_snapshots("v")
        assert sorted(s["name"] for s in listed) == made
        groups = [{s["name"] for s in listed[i:i + 2]} for i in (0, 2, 4)]
        assert groups == [{"s0", "s1"}, {"s2", "s3"}, {"s4", "s5"}]
        check = storage.rollback_check("v", "s3")
        assert check["blockers"] == ["s4", "s5"]
        assert check["destroys"] == {"snapshots": 2, "clones": 0}
        # s0 and s1 share a second: the count decides, all are named
        check = storage.rollback_check("v", "s0")
        assert check["destroys"]["snapshots"] == 5
        assert sorted(check["blockers"]) == ["s1", "s2", "s3", "s4", "s5"]
    finally:
        running.stop()


def test_vips_are_listed(appliance_, tmp_path):
    _, answer = raw(appliance_, "GET", "/pools/Pool-0/vips")
    assert [(v["name"], v["address"]) for v in answer["data"]] == [
        ("vip0", "127.0.0.1"), ("vip1", "198.51.100.10")]
    assert all("interface" in v for v in answer["data"])
    assert storage_of(appliance_, tmp_path).backend.list_vips() == [
        {"name": "vip0", "address": "127.0.0.1"},
        {"name": "vip1", "address": "198.51.100.10"}]
    assert raw(appliance_, "GET", "/pools/Pool-1/vips")[1]["data"] == []


def test_sessions_are_a_list(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    export = exported(storage)
    _, answer = raw(appliance_, "GET", "/pools/Pool-0/san/iscsi/targets/"
                    + export["target"] + "/sessions")
    assert answer["data"] == []       # nobody logged in (real ones: tgt)
    assert storage.backend.target_sessions(export["target"]) == []


def test_provisioning_changes_the_reservation(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("vm-1-disk-0", 4 * G, thin=True)
    status, _ = raw(appliance_, "PUT", "/pools/Pool-0/volumes/v_vm-1-disk-0",
                    {"provisioning": "thick"})
    assert status == 201
    assert storage.volume("vm-1-disk-0")["thin"] is False
    assert storage.pool()["used"] == 4 * G
    storage.backend.set_provisioning("v_vm-1-disk-0", True)
    assert storage.volume("vm-1-disk-0")["thin"] is True
    assert storage.pool()["used"] == 0
    storage.create_snapshot("vm-1-disk-0", "s1")
    before = len(appliance_.requests())
    storage.clone_volume("vm-1-disk-0", "vm-2-disk-0", snapshot="s1",
                         thin=False)
    changes = [(m, p.rsplit("/", 1)[1]) for _, m, p, _ in
               appliance_.requests()[before:] if m != "GET"]
    assert changes == [("POST", "clone"), ("PUT", "v_vm-2-disk-0")]
    assert storage.pool()["used"] == 4 * G


def test_shares_carry_real_path(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_nas_volume("content", G)
    share = storage.create_share("content")
    _, answer = raw(appliance_, "GET", "/shares/" + share["name"])
    assert answer["data"]["real_path"] == "/Pool-0/content"
    (info,) = storage.backend.list_shares()
    assert info.real_path == "/Pool-0/content"
    assert share["exports"] == ["127.0.0.1:/Pool-0/content"]
    # the export path is the appliance's, where it tells it
    from jdss.backends.base import ShareInfo
    moved = ShareInfo(name="c", path="Pool-0/content",
                      real_path="/Pools/Pool-0/content")
    assert storage._share_view(moved)["exports"] == \
        ["127.0.0.1:/Pools/Pool-0/content"]


def test_pages_hold_at_most_100(newer, tmp_path):
    storage = storage_of(newer, tmp_path)
    from jdss.backends.store import StateStore
    store = StateStore(newer.state_dir, "Pool-0", 100 * G)
    with store.transaction() as model:
        for n in range(150):
            model.create_volume(f"v_vm-{n}-disk-0", G, True)
    _, answer = raw(newer, "GET", "/pools/Pool-0/volumes?page=0"
                    "&per_page=500")
    assert len(answer["data"]["entries"]) == 100
    assert answer["data"]["results"] == 150
    before = len(newer.requests())
    assert len(storage.list_volumes()) == 150
    asked = [int(re.search(r"per_page=(\d+)", p).group(1))
             for _, _, p, _ in newer.requests()[before:]]
    assert len(asked) == 3 and max(asked) <= 100      # 100, 50, empty


# Errors ------------------------------------------------------------------
def test_delete_of_a_volume_with_clones(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("base", G)
    storage.create_snapshot("base", "s1")
    storage.clone_volume("base", "child", snapshot="s1")
    status, answer = raw(appliance_, "DELETE", "/pools/Pool-0/volumes/v_base",
                         {"recursively_children": True})
    cls = {"newer": "opene.storage.zfs.ZfsOeError",
           "older": "opene.storage.zfs.zfs.ZfsOeError"}[appliance_.firmware]
    assert (status, answer["error"]["class"], answer["error"]["message"]) \
        == (500, cls, "In order to delete a zvol, you must delete all of "
            "its clones first.")
    with pytest.raises(errors.Busy, match="clones.*child"):
        storage.delete_volume("base", recursive=True)


def test_delete_of_a_volume_with_snapshots(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("v", G)
    storage.create_snapshot("v", "s1")
    status, answer = raw(appliance_, "DELETE", "/pools/Pool-0/volumes/v_v")
    assert status == 500
    assert answer["error"]["class"] == "zfslib.wrap.zfs.ZfsCmdError"
    assert answer["error"]["message"].startswith(
        "cannot destroy 'Pool-0/v_v': volume has children\nuse '-r'")
    with pytest.raises(errors.Busy, match="has snapshots: s1"):
        storage.delete_volume("v")


def test_snapshot_exists(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("v", G)
    storage.create_snapshot("v", "s1")
    status, answer = raw(appliance_, "POST", "/pools/Pool-0/volumes/v_v/"
                         "snapshots", {"snapshot_name": "s_s1"})
    assert (status, answer["error"]["errno"]) == (500, 5)
    with pytest.raises(errors.AlreadyExists, match="snapshot 's1'"):
        storage.create_snapshot("v", "s1")


def test_volume_exists(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_volume("v", G)
    _, answer = raw(appliance_, "POST", "/pools/Pool-0/volumes",
                    {"name": "v_v", "size": str(G)})
    expected = 5 if appliance_.firmware == "newer" else "5"
    assert answer["error"]["errno"] == expected
    with pytest.raises(errors.AlreadyExists, match="'v'"):
        storage.create_volume("v", G)


def test_missing_nas_volume_on_delete(appliance_, tmp_path):
    status, answer = raw(appliance_, "DELETE", "/pools/Pool-0/nas-volumes/x")
    assert answer["error"]["class"] == "opene.exceptions.ItemNotFoundError"
    assert status == (404 if appliance_.firmware == "newer" else 500)
    backend = storage_of(appliance_, tmp_path).backend
    with pytest.raises(errors.NotFound):
        backend.delete_nas_volume("x")


def test_missing_share_on_delete(appliance_, tmp_path):
    status, answer = raw(appliance_, "DELETE", "/shares/nope")
    assert answer["error"]["class"] == "werkzeug.exceptions.NotFound"
    assert answer["error"]["message"] == "Share nope not exists."
    storage = storage_of(appliance_, tmp_path)
    with pytest.raises(errors.NotFound):
        storage.backend.delete_share("nope")
    storage.create_nas_volume("content", G)
    storage.delete_share("content")         # not shared: nothing to do


def test_missing_nas_clone(appliance_, tmp_path):
    storage = storage_of(appliance_, tmp_path)
    storage.create_nas_volume("data", G)
    storage.backend.create_nas_snapshot("data", "1_s")
    status, answer = raw(appliance_, "DELETE", "/pools/Pool-0/nas-volumes/"
                         "data/snapshots/1_s/clones/nope")
    assert answer["error"]["class"] == "werkzeug.exceptions.NotFound"
    assert answer["error"]["message"] == "Clone nope not exists"
    with pytest.raises(errors.NotFound):
        storage.backend.delete_nas_clone("data", "1_s", "nope")
    storage.backend.create_nas_clone("data", "1_s", "data-c")
    assert "data-c" in {v["name"] for v in storage.list_nas_volumes()}
    storage.backend.delete_nas_clone("data", "1_s", "data-c")
    assert [s.name for s in storage.backend.list_nas_snapshots("data")] == \
        ["1_s"]
