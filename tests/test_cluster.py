"""A two-node Proxmox cluster against one appliance.

Each node runs the real PVE::Storage with the plugin in namespaces of its
own (its hostname, /run and initiator name: tests/cluster.py); /etc/pve is
one shared directory whose locks serialise the nodes as pmxcfs's do; the
appliance is the emulator serving real iSCSI targets through tgtd; guests
are qemu-io sessions logged in with their node's initiator name, as QEMU is
with the blockdev Proxmox gets from the plugin.
"""

import concurrent.futures
import json
import os
import time

import pytest

from jdss.backends.tgt import TgtMirror
from tests.cluster import Guest, Node, NodeError, missing
from tests.emulator import Emulator, free_port

WHY = missing()
if WHY and os.environ.get("CI") != "true":
    pytest.skip(WHY, allow_module_level=True)
MB = 1 << 20
GRACE = 3          # seconds activation_grace in these tests
STORAGE = "jdss-p0"


class Cluster:
    """Two nodes, a shared /etc/pve and an emulator with tgtd."""

    def __init__(self, directory, tls_cert, nodes=("node-a", "node-b")):
        self.directory = directory
        self.root = directory / "pve"
        (self.root / "priv" / "lock").mkdir(parents=True)
        for name in nodes:
            (self.root / "nodes" / name / "qemu-server").mkdir(parents=True)
        self.port = free_port()
        self.portal = f"127.0.0.1:{self.port}"
        self.emulator = Emulator(str(directory), *tls_cert,
                                 tgt_portal=self.portal,
                                 pools=("Pool-0", "Pool-2"))
        sections = ["dir: local\n\tpath /nonexistent\n\tdisable 1\n"]
        for pool, storeid in (("Pool-0", STORAGE), ("Pool-2", "jdss-p2")):
            config = self.root / f"jdss-{pool}.yaml"
            values = self.emulator.config(
                transport="iscsi-direct", thin_provision=True,
                target_port=self.port, activation_grace=GRACE,
                lock_timeout=60)
            config.write_text("".join(f"{k}: {json.dumps(v)}\n"
                                      for k, v in values.items()))
            sections.append(f"joviandss: {storeid}\n\tpool_name {pool}\n"
                            f"\tconfig {config}\n\tcontent images\n"
                            "\tshared 1\n")
        (self.root / "storage.cfg").write_text("\n".join(sections))
        self.nodes = {}
        for name in nodes:
            self.nodes[name] = Node(name, str(directory), self.root)
        self.guests = []

    def members(self, **online):
        """Write pmxcfs's .members: which nodes are up."""
        nodelist = {name: {"id": n + 1, "online": int(online.get(
            name.replace("-", "_"), True)), "ip": "127.0.0.1"}
            for n, name in enumerate(sorted(self.nodes))}
        (self.root / ".members").write_text(json.dumps(
            {"nodename": "node-a", "version": 1, "nodelist": nodelist}))

    def guest(self, node, volid):
        """Start a guest's disk on ``node`` (QEMU logs in)."""
        guest = Guest(self.nodes[node].call("blockdev", volid=volid))
        self.guests.append(guest)
        return guest

    def targets(self):
        """IQN -> initiators with a session, as tgtd sees them."""
        mirror = TgtMirror(self.portal, str(self.directory
                                            / "emulator-state"), "Pool-0")
        return {iqn: [s["initiator_name"] for s in mirror.sessions(iqn)]
                for iqn in mirror._targets()}

    def exported(self, volume):
        return [iqn for iqn in self.targets() if iqn.endswith(volume)]

    def stop(self):
        for guest in self.guests:
            if guest.proc.poll() is None:
                guest.kill()
        for node in self.nodes.values():
            if node.proc.poll() is None:
                node.stop()
        self.emulator.stop()


@pytest.fixture
def cluster(tmp_path, tls_cert):
    running = Cluster(tmp_path, tls_cert)
    yield running
    running.stop()


def test_nodes_have_their_own_names_and_initiators(cluster):
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    assert a.call("node") == {"node": "node-a", "initiator": a.initiator}
    assert b.call("node") == {"node": "node-b", "initiator": b.initiator}
    volid = a.call("alloc", storage=STORAGE, vmid=100, name=None, kib=8192)
    a.call("activate", volid=volid)
    assert a.call("blockdev", volid=volid)["initiator-name"] == a.initiator
    guest = cluster.guest("node-a", volid)
    assert list(cluster.targets().values()) == [[a.initiator]]
    guest.stop()


def test_live_migration_keeps_the_data_and_then_the_export_goes(cluster):
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    volid = a.call("alloc", storage=STORAGE, vmid=101, name=None, kib=8192)
    a.call("activate", volid=volid)
    source = cluster.guest("node-a", volid)
    assert "wrote" in source.run("write -P 0x61 0 1M")
    b.call("activate", volid=volid)                 # the migration target
    target = cluster.guest("node-b", volid)
    source.stop()
    a.call("deactivate", volid=volid)               # the source lets go
    assert cluster.exported("vm-101-disk-0"), "the export was removed"
    assert "Pattern verification failed" not in target.run(
        "read -P 0x61 0 1M")
    assert "wrote" in target.run("write -P 0x62 1M 1M")
    target.stop()
    b.call("deactivate", volid=volid)
    assert cluster.exported("vm-101-disk-0") == []  # nobody holds it now


def test_a_stale_deactivate_does_not_pull_the_export_from_a_starting_guest(
        cluster):
    """Node B activates (its QEMU not started yet); node A's deactivate of
    the same volume must leave the export for B."""
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    volid = a.call("alloc", storage=STORAGE, vmid=102, name=None, kib=8192)
    a.call("activate", volid=volid)
    b.call("activate", volid=volid)
    a.call("deactivate", volid=volid)               # before B's QEMU starts
    assert cluster.exported("vm-102-disk-0")
    guest = cluster.guest("node-b", volid)          # starts fine
    assert "wrote" in guest.run("write -P 0x63 0 1M")
    guest.stop()
    b.call("deactivate", volid=volid)
    assert cluster.exported("vm-102-disk-0") == []


def test_node_failure_and_takeover_leave_no_export_behind(cluster):
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    cluster.members()
    volid = a.call("alloc", storage=STORAGE, vmid=103, name=None, kib=8192)
    a.call("activate", volid=volid)
    dead = cluster.guest("node-a", volid)
    dead.run("write -P 0x64 0 1M")
    dead.kill()                                      # node A dies with it
    a.kill()
    cluster.members(node_a=False)                    # fenced: offline
    b.call("activate", volid=volid)                  # HA starts it on B
    guest = cluster.guest("node-b", volid)
    assert "Pattern verification failed" not in guest.run(
        "read -P 0x64 0 1M")
    guest.stop()
    b.call("deactivate", volid=volid)                # B's guest stops
    assert cluster.exported("vm-103-disk-0") == [], \
        "the dead node's record kept the export"


def test_an_old_record_without_a_session_holds_nothing(cluster):
    """A node that activated long ago and has no session (its guest never
    started, or it rebooted) does not keep an export forever."""
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    volid = a.call("alloc", storage=STORAGE, vmid=104, name=None, kib=8192)
    a.call("activate", volid=volid)
    b.call("activate", volid=volid)
    time.sleep(GRACE + 1)
    a.call("deactivate", volid=volid)
    assert cluster.exported("vm-104-disk-0") == []


def test_concurrent_allocations_from_two_nodes(cluster):
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]

    def alloc(node, name):
        try:
            return node.call("alloc", storage=STORAGE, vmid=200, name=name,
                             kib=1024)
        except NodeError as exc:
            return f"error: {exc}"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        automatic = list(pool.map(lambda n: alloc(n, None),
                                  [a, b, a, b]))
        colliding = list(pool.map(lambda n: alloc(n, "vm-200-disk-9"),
                                  [a, b]))
    assert sorted(automatic) == [f"{STORAGE}:vm-200-disk-{n}"
                                 for n in range(4)]
    made = [r for r in colliding if not r.startswith("error")]
    refused = [r for r in colliding if r.startswith("error")]
    assert made == [f"{STORAGE}:vm-200-disk-9"]
    assert len(refused) == 1 and "already exists" in refused[0]


def test_snapshot_on_one_node_while_the_other_rolls_back(cluster):
    """The cluster-wide lock serialises them: the rollback either happens
    before the snapshot (which then survives) or refuses because of it;
    a snapshot is never destroyed behind anyone's back."""
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    volid = a.call("alloc", storage=STORAGE, vmid=105, name=None, kib=8192)
    a.call("snapshot", volid=volid, snap="base")
    for round_ in range(4):
        snap = f"later{round_}"

        def rollback():
            try:
                a.call("rollback", volid=volid, snap="base")
                return "rolled back"
            except NodeError as exc:
                return str(exc)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            rolled = pool.submit(rollback)
            b.call("snapshot", volid=volid, snap=snap)
            outcome = rolled.result()
        info = b.call("snapshots", volid=volid)
        assert snap in info, (outcome, info)         # never destroyed
        assert outcome == "rolled back" or "not most recent" in outcome \
            or "would destroy" in outcome, outcome
        b.call("snapshot_delete", volid=volid, snap=snap)


def test_same_volume_name_in_two_pools_has_two_targets(cluster):
    a = cluster.nodes["node-a"]
    first = a.call("alloc", storage=STORAGE, vmid=213, name="vm-213-disk-0",
                   kib=8192)
    second = a.call("alloc", storage="jdss-p2", vmid=213,
                    name="vm-213-disk-0", kib=8192)
    a.call("activate", volid=first)
    a.call("activate", volid=second)
    one, two = cluster.guest("node-a", first), cluster.guest("node-a", second)
    one.run("write -P 0x71 0 1M")
    two.run("write -P 0x72 0 1M")
    assert "Pattern verification failed" not in one.run("read -P 0x71 0 1M")
    assert "Pattern verification failed" not in two.run("read -P 0x72 0 1M")
    assert len(cluster.exported("vm-213-disk-0")) == 2
    one.stop()
    two.stop()


def test_a_snapshot_exposed_on_two_nodes_stays_until_both_let_go(cluster):
    a, b = cluster.nodes["node-a"], cluster.nodes["node-b"]
    volid = a.call("alloc", storage=STORAGE, vmid=106, name=None, kib=8192)
    a.call("activate", volid=volid)
    guest = cluster.guest("node-a", volid)
    guest.run("write -P 0x65 0 1M")
    a.call("snapshot", volid=volid, snap="s1")
    guest.run("write -P 0x66 0 1M")
    for node in (a, b):
        node.call("activate", volid=volid, snap="s1")
    readers = {name: Guest(cluster.nodes[name].call(
        "blockdev_snap", volid=volid, snap="s1"), read_only=True)
        for name in ("node-a", "node-b")}
    readers["node-a"].stop()
    a.call("deactivate", volid=volid, snap="s1")
    assert "Pattern verification failed" not in readers["node-b"].run(
        "read -P 0x65 0 1M"), "the first detach removed it under node B"
    readers["node-b"].stop()
    b.call("deactivate", volid=volid, snap="s1")
    assert [iqn for iqn in cluster.targets() if "s1" in iqn] == []
    guest.stop()
