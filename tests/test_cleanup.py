"""jdss cleanup: leftovers of interrupted operations, on every backend."""

from jdss import cleanup, naming

PREFIX = "iqn.2021-10.iscsi:"


def leftovers(storage):
    """What crashed attaches and clones leave behind, and what they don't."""
    backend = storage.backend
    storage.create_volume("vm-100-disk-0", "1G")
    storage.create_snapshot("vm-100-disk-0", "s1")
    storage.create_target("vm-100-disk-0")             # a real export: keep
    storage.create_volume("vm-101-disk-0", "1G")
    se_clone = naming.snapshot_clone_name("vm-100-disk-0", "s1")
    backend.clone_volume("v_vm-100-disk-0", "s_s1", se_clone, sparse=True,
                         readonly=True)                # crashed snapshot attach
    backend.create_target(PREFIX + "vm-100-disk-0.s1", False)
    backend.add_lun(PREFIX + "vm-100-disk-0.s1", se_clone, 0)
    backend.create_snapshot("v_vm-101-disk-0", "c_v_vm-102-disk-0")
    backend.create_target(PREFIX + "orphan", False)   # crashed export
    backend.create_target("iqn.2000-01.other:keep", False)   # not ours
    return se_clone


def test_dry_run_lists_and_changes_nothing(storage):
    se_clone = leftovers(storage)
    found = cleanup.find(storage)
    assert {(i["kind"], i["name"], i["action"]) for i in found} == {
        ("target", PREFIX + "orphan", "remove"),
        ("volume", se_clone, "remove"),
        ("snapshot", "v_vm-101-disk-0@c_v_vm-102-disk-0", "remove")}
    assert len(cleanup.find(storage)) == 3                 # nothing changed


def test_cleanup_removes_only_leftovers(storage):
    se_clone = leftovers(storage)
    done = cleanup.remove(storage, cleanup.find(storage))
    assert {i["action"] for i in done} == {"removed"}
    assert cleanup.find(storage) == []
    names = {v.name for v in storage.backend.list_volumes()}
    assert se_clone not in names
    assert {"v_vm-100-disk-0", "v_vm-101-disk-0"} <= names
    assert [s["name"] for s in storage.list_snapshots("vm-100-disk-0")] == \
        ["s1"]
    assert storage.target("vm-100-disk-0")["lun"] == 0
    targets = {t.name for t in storage.backend.list_targets()}
    assert targets == {storage.iqn("vm-100-disk-0"),
                       "iqn.2000-01.other:keep"}


def test_leftovers_in_use_are_kept(storage, monkeypatch):
    se_clone = leftovers(storage)
    monkeypatch.setattr(storage.backend, "target_sessions",
                        lambda iqn: ["iqn.1993-08.org.debian:node2"]
                        if iqn.endswith(".s1") else [])
    items = cleanup.remove(storage, cleanup.find(storage))
    kept = [i for i in items if i["name"] == se_clone]
    assert kept[0]["action"] == "keep"
    assert "node2 still use it" in kept[0]["reason"]
    assert se_clone in {v.name for v in storage.backend.list_volumes()}


def test_cleanup_command(cli):
    assert cli("volume", "create", "v", "--size", "1G").code == 0
    assert cli("cleanup", "--dry-run", "-f", "json").json() == []
    assert cli("cleanup", "-f", "json").json() == []


def test_a_shared_target_keeps_everything_but_the_leftover(storage):
    """A leftover exported through a target that also exports a volume in
    use (the original plugin's per-guest targets): only its LUN goes."""
    backend = storage.backend
    storage.create_volume("vm-100-disk-0", "1G")
    storage.create_snapshot("vm-100-disk-0", "s1")
    se_clone = naming.snapshot_clone_name("vm-100-disk-0", "s1")
    backend.clone_volume("v_vm-100-disk-0", "s_s1", se_clone, sparse=True,
                         readonly=True)
    group = PREFIX + "vm-100-0"
    backend.create_target(group, False)
    backend.add_lun(group, "v_vm-100-disk-0", 0)
    backend.add_lun(group, se_clone, 1)
    done = cleanup.remove(storage, cleanup.find(storage))
    assert [(i["name"], i["action"]) for i in done] == [(se_clone,
                                                         "removed")]
    assert backend.target_luns(group) == {"v_vm-100-disk-0": 0}
    assert storage.target("vm-100-disk-0")["target"] == group
    assert se_clone not in {v.name for v in backend.list_volumes()}


def hidden_volumes(backend):
    """The vendor's plugin's hidden t_ volumes: of this cluster (prefix
    pveA), one with and one without a clone, and another cluster's."""
    for name in ("t_pveA_vm-1-disk-0_0a1b", "t_pveA_vm-2-disk-0_2c3d",
                 "t_pveB_vm-3-disk-0_4e5f"):
        backend.create_volume(name, 1 << 30, True, "16K")
        backend.create_snapshot(name, "s")
    backend.clone_volume("t_pveA_vm-1-disk-0_0a1b", "s",
                         "v_pveA_vm-4-disk-0", sparse=True)


def test_hidden_volumes_go_once_no_clone_needs_them(make_storage):
    storage = make_storage(cluster_prefix="pveA")
    hidden_volumes(storage.backend)
    found = {i["name"]: (i["action"], i["reason"])
             for i in cleanup.find(storage)}
    assert found == {
        "t_pveA_vm-1-disk-0_0a1b": (
            "keep", "hidden volume that clones still depend on: "
                    "v_pveA_vm-4-disk-0"),
        "t_pveA_vm-2-disk-0_2c3d": (
            "remove", "hidden volume that no clone depends on")}
    cleanup.remove(storage, cleanup.find(storage))
    assert {v.name for v in storage.backend.list_volumes()} == {
        "t_pveA_vm-1-disk-0_0a1b", "t_pveB_vm-3-disk-0_4e5f",
        "v_pveA_vm-4-disk-0"}


def test_without_a_prefix_every_hidden_volume_is_looked_at(storage):
    hidden_volumes(storage.backend)
    assert {i["name"]: i["action"] for i in cleanup.find(storage)} == {
        "t_pveA_vm-1-disk-0_0a1b": "keep",
        "t_pveA_vm-2-disk-0_2c3d": "remove",
        "t_pveB_vm-3-disk-0_4e5f": "remove"}


def test_a_hidden_volume_goes_with_the_snapshot_it_hung_from(storage):
    """The vendor's plugin's t_ volume of a deleted linked clone hangs
    from a hidden snapshot of the base (its v_<clone>, or jdss's c_):
    one cleanup removes both, and the base can be deleted."""
    backend = storage.backend
    storage.create_volume("base-100-disk-0", "1G")
    for snap, hidden in (("v_vm-101-disk-0", "t_vm-101-disk-0_ab"),
                         ("c_v_vm-102-disk-0", "t_vm-102-disk-0_cd")):
        backend.create_snapshot("v_base-100-disk-0", snap)
        backend.clone_volume("v_base-100-disk-0", snap, hidden, sparse=True)
    done = cleanup.remove(storage, cleanup.find(storage))
    assert sorted((i["name"], i["action"]) for i in done) == [
        ("t_vm-101-disk-0_ab", "removed"), ("t_vm-102-disk-0_cd", "removed")]
    assert cleanup.find(storage) == []
    assert backend.list_snapshots("v_base-100-disk-0") == []
    storage.delete_volume("base-100-disk-0")
    assert storage.list_volumes() == []
