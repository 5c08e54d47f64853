"""Rollback safety from the appliance's own answer.

The appliance counts what a rollback destroys (GET .../rollback) and lists
snapshots in no promised order; a rollback never destroys a clone, nor a
snapshot its caller did not accept, even when another node makes one
while it is being decided.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from jdss import errors, rollback
from jdss.backends.base import SnapshotInfo
from tests.conftest import jdss_command, write_config
from tests.emulator import Emulator

G = 1 << 30


def infos(*specs):
    return [SnapshotInfo(name, "v_v", creation) for name, creation in specs]


@pytest.mark.parametrize("order", [slice(None), slice(None, None, -1)])
def test_plan_names_newer_snapshots_from_creation_times(order):
    snapshots = infos(("s_a", 100), ("s_b", 105), ("s_c", 107),
                      ("s_d", 107))[order]
    plan = rollback.plan(snapshots, "s_a", (3, 0))
    assert plan.blockers() == ["b", "c", "d"] and plan.maybe == []
    assert rollback.plan(snapshots, "s_d", (0, 0)).blockers() == []
    assert rollback.plan(snapshots, "s_x", (1, 0)) is None


def test_plan_names_every_candidate_of_the_same_second():
    snapshots = infos(("s_a", 100), ("s_b", 100), ("s_c", 100),
                      ("s_d", 101))
    plan = rollback.plan(snapshots, "s_b", (2, 0))
    assert [s.name for s in plan.newer] == ["s_d"]
    assert [s.name for s in plan.maybe] == ["s_a", "s_c"]
    assert plan.describe() == \
        "d, 1 of a, c (made in the same second as the target)"
    # all of the same second must go: the count leaves no choice
    plan = rollback.plan(snapshots, "s_a", (3, 0))
    assert plan.describe() == "b, c, d" and plan.maybe == []


def test_rollback_refuses_then_forces_and_reports(storage):
    storage.create_volume("v", G)
    for snap in ("s1", "s2", "s3"):
        storage.create_snapshot("v", snap)
    with pytest.raises(errors.RollbackBlocked) as info:
        storage.rollback("v", "s1")
    assert sorted(info.value.blockers) == ["s2", "s3"]
    done = storage.rollback("v", "s1", force=True)
    assert sorted(done["destroyed"]) == ["s2", "s3"]
    assert [s["name"] for s in storage.list_snapshots("v")] == ["s1"]


def test_clones_are_never_destroyed(storage):
    storage.create_volume("v", G)
    storage.create_snapshot("v", "s1")
    storage.create_snapshot("v", "s2")
    storage.clone_volume("v", "child", snapshot="s2")
    storage.clone_volume("v", "copy")              # hidden c_ snapshot
    for force in (False, True):
        with pytest.raises(errors.Busy) as info:
            storage.rollback("v", "s1", force=force)
        assert "child" in str(info.value) and "copy" in str(info.value)
        assert info.value.exit_code == 6
    assert {v["name"] for v in storage.list_volumes()} == \
        {"v", "child", "copy"}
    check = storage.rollback_check("v", "s1")
    assert sorted(check["clones"]) == ["child", "copy"]


@pytest.mark.parametrize("made", ["snapshot", "clone"])
def test_what_another_node_makes_meanwhile_is_never_destroyed(
        make_storage, monkeypatch, made):
    """Another node (its own lock, so only the appliance is shared) makes
    a snapshot or a clone after this node accepted losing s2."""
    storage = make_storage()
    storage.create_volume("v", G)
    storage.create_snapshot("v", "s1")
    storage.create_snapshot("v", "s2")
    other = make_storage().backend
    if made == "snapshot":
        def action():
            other.create_snapshot("v_v", "s_s3")
    else:
        def action():
            other.clone_volume("v_v", "s_s2", "v_child", sparse=True)
    real, done = storage.backend.rollback_snapshot, []

    def meanwhile(aname, snap, expect):
        if expect != (0, 0) and not done:      # s2 is accepted by now
            done.append(action())
        return real(aname, snap, expect)

    monkeypatch.setattr(storage.backend, "rollback_snapshot", meanwhile)
    expected = errors.RollbackBlocked if made == "snapshot" else errors.Busy
    with pytest.raises(expected) as info:
        storage.rollback("v", "s1", force=True)
    assert done and "changed meanwhile" in str(info.value)
    names = [s["name"] for s in storage.list_snapshots("v")]
    if made == "snapshot":
        assert names == ["s1", "s2", "s3"] and "s3" in str(info.value)
    else:
        assert names == ["s1", "s2"] and storage.volume("child")
        assert "child" in str(info.value)


@pytest.mark.parametrize("order", ["reverse", "random"])
@pytest.mark.parametrize("firmware", ["newer", "older"])
def test_forced_rollback_in_any_listing_order(tmp_path, tls_cert, order,
                                              firmware):
    running = Emulator(str(tmp_path), *tls_cert, snapshot_order=order,
                       firmware=firmware)
    try:
        config = write_config(tmp_path / "rest.yaml", **running.config())
        from jdss import config as jconfig
        from jdss import drivers
        from jdss.storage import Storage
        cfg = jconfig.load(str(config))
        storage = Storage(cfg, drivers.load_backend(cfg))
        storage.create_volume("v", G)
        storage.create_snapshot("v", "s0")
        time.sleep(1.05)                 # whole seconds: s0 is older
        for snap in ("s1", "s2", "s3"):
            storage.create_snapshot("v", snap)
        with pytest.raises(errors.RollbackBlocked) as info:
            storage.rollback("v", "s0")
        assert sorted(info.value.blockers) == ["s1", "s2", "s3"]
        done = storage.rollback("v", "s0", force=True)
        assert sorted(done["destroyed"]) == ["s1", "s2", "s3"]
        assert [s["name"] for s in storage.list_snapshots("v")] == ["s0"]
    finally:
        running.stop()


# two processes standing for two nodes ----------------------------------------
NODE = shutil.which("unshare")


def node_b(config, *args):
    """jdss on "another node": its own /run (locks), same appliance."""
    script = ('mount -t tmpfs tmpfs /run && mkdir -p /run/lock && '
              'exec "$@"')
    return subprocess.run(
        [NODE, "--mount", "--propagation", "private", "sh", "-c", script,
         "node-b", jdss_command(), "-c", str(config)] + list(args),
        capture_output=True, text=True, timeout=120)


def wait_for(emulator, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(predicate(m, p) for _, m, p, _ in emulator.requests()):
            return
        time.sleep(0.02)
    raise AssertionError("the rollback never got that far")


@pytest.fixture
def two_nodes(tmp_path, tls_cert):
    if os.geteuid() != 0 or NODE is None:
        pytest.skip("needs root and unshare for a second node")
    running = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",))
    config = write_config(tmp_path / "rest.yaml",
                          **running.config(rest_api_deadline=20))
    setup = [("volume", "create", "v", "--size", "1G"),
             ("snapshot", "create", "v", "s1"),
             ("snapshot", "create", "v", "s2")]
    for args in setup:
        assert subprocess.run([jdss_command(), "-c", str(config)]
                              + list(args), capture_output=True,
                              timeout=60).returncode == 0
    yield running, config
    running.stop()


def listed(config, *args):
    out = subprocess.run([jdss_command(), "-c", str(config)] + list(args)
                         + ["-f", "json"], capture_output=True, text=True,
                         timeout=60).stdout
    return json.loads(out)


@pytest.mark.parametrize("made", [("snapshot", "create", "v", "s3"),
                                  ("volume", "clone", "v", "child",
                                   "--snapshot", "s2")])
def test_two_nodes_race_a_rollback(two_nodes, made):
    """Node A rolls back to s1 with --force (accepting to lose s2); node B
    makes a snapshot or a clone after A accepted and before A rolls back.
    A must refuse, and nothing of B's is destroyed."""
    emulator, config = two_nodes
    check = "/api/v4/pools/Pool-0/volumes/v_v/snapshots/s_s1/rollback"
    # A's second look at the appliance's count waits 3 s in the emulator
    emulator.faults({"action": "delay", "method": "GET", "path": check + "$",
                     "seconds": 0, "count": 1},
                    {"action": "delay", "method": "GET", "path": check + "$",
                     "seconds": 3, "count": 1})
    node_a = subprocess.Popen(
        [jdss_command(), "-c", str(config), "snapshot", "rollback", "v",
         "s1", "--force"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    # A has counted, listed and accepted s2 once its list is complete
    wait_for(emulator, lambda m, p: m == "GET" and "/snapshots?page=1" in p)
    b = node_b(config, *made)
    assert b.returncode == 0, b.stderr
    out, err = node_a.communicate(timeout=60)
    emulator.faults()
    assert node_a.returncode in (6, 8), err
    assert "changed meanwhile" in err
    snapshots = [s["name"] for s in listed(config, "snapshot", "list", "v")]
    volumes = [v["name"] for v in listed(config, "volume", "list")]
    if made[0] == "snapshot":
        assert node_a.returncode == 8 and snapshots == ["s1", "s2", "s3"]
    else:
        assert node_a.returncode == 6 and "child" in err
        assert snapshots == ["s1", "s2"] and "child" in volumes
    posts = [p for _, m, p, _ in emulator.requests()
             if m == "POST" and p.endswith("/rollback")]
    assert posts == []                          # never sent


def test_a_snapshot_made_after_the_rollback_survives(two_nodes):
    emulator, config = two_nodes
    done = subprocess.run([jdss_command(), "-c", str(config), "snapshot",
                           "rollback", "v", "s1", "--force", "-f", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["destroyed"] == ["s2"]
    assert node_b(config, "snapshot", "create", "v", "s3").returncode == 0
    blocked = node_b(config, "snapshot", "rollback", "v", "s1")
    assert blocked.returncode == 8 and "s3" in blocked.stderr
    assert [s["name"] for s in listed(config, "snapshot", "list", "v")] == \
        ["s1", "s3"]
