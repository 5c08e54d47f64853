"""Activation records: which nodes use a volume, seen by every node."""

import time

import pytest

from jdss import activations
from jdss import config as jconfig


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    root = tmp_path / "pve"
    for node in ("node-a", "node-b"):
        (root / "nodes" / node).mkdir(parents=True)
    (root / "priv").mkdir()
    monkeypatch.setenv("JDSS_PVE_ROOT", str(root))
    config = jconfig.parse({"backend": "fake", "activation_grace": 60})
    return root, activations.Activations(config)


def test_records_live_in_pmxcfs(cluster):
    root, records = cluster
    records.add("vm-1-disk-0", "iqn.a", node="node-a")
    records.add("vm-1-disk-0", "iqn.b", node="node-b")
    files = list((root / "priv" / "jdss" / "active" / "Pool-0").iterdir())
    assert len(files) == 1
    assert set(records.read("vm-1-disk-0")) == {"node-a", "node-b"}
    records.remove("vm-1-disk-0", node="node-b")
    assert set(records.read("vm-1-disk-0")) == {"node-a"}
    records.remove("vm-1-disk-0", node="node-a")
    assert not files[0].exists()


def test_a_fresh_activation_counts_before_its_guest_logs_in(cluster):
    _, records = cluster
    records.add("vm-1-disk-0", "iqn.b", node="node-b")
    assert records.holders("vm-1-disk-0", sessions=[], node="node-a") == \
        ["node-b"]


def test_an_old_activation_counts_only_with_a_session(cluster, monkeypatch):
    _, records = cluster
    records.add("vm-1-disk-0", "iqn.b", node="node-b")
    later = time.time() + 61
    monkeypatch.setattr(activations.time, "time", lambda: later)
    assert records.holders("vm-1-disk-0", [], node="node-a") == []
    assert records.holders("vm-1-disk-0", ["iqn.b"], node="node-a") == \
        ["node-b"]


def test_a_node_that_left_the_cluster_holds_nothing(cluster):
    root, records = cluster
    records.add("vm-1-disk-0", "iqn.c", node="node-c")       # not a member
    assert records.holders("vm-1-disk-0", ["iqn.c"], node="node-a") == []


def test_own_record_never_holds(cluster):
    _, records = cluster
    records.add("vm-1-disk-0", "iqn.a", node="node-a")
    assert records.holders("vm-1-disk-0", ["iqn.a"], node="node-a") == []
