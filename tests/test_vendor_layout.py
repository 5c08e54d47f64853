"""A pool as the vendor's 1.0 left it, and several clusters on one pool.

The fixture pool holds objects in the vendor's layout, made through the
backend with the appliance's names: a template renamed to base-... with no
__base__ snapshot, a linked clone with a plain vm-... name hanging from a
hidden snapshot v_<clone> of the template, a per-guest target
<target_prefix>:vm-<vmid>-0 with several LUNs, and the volumes of another
cluster (cluster_prefix pveB).
"""

import pytest

from jdss import errors
from jdss.transport import Transport

PREFIX = "iqn.2025-06.proxmox.pool-0"
G = 1 << 30


class Here(Transport):
    """Attaches nothing; this node's initiator is node-a's."""

    def connect(self, properties):
        return f"lun-{properties['target_lun']}"

    def disconnect(self, properties):
        pass

    def initiator_name(self):
        return "iqn.1993-08.org.debian:01:node-a"


@pytest.fixture
def vendor_pool(make_storage):
    storage = make_storage(target_prefix=PREFIX)
    backend = storage.backend
    backend.create_volume("v_base-100-disk-0", G, True, "16K")   # template
    backend.create_snapshot("v_base-100-disk-0", "v_vm-101-disk-0")
    backend.clone_volume("v_base-100-disk-0", "v_vm-101-disk-0",
                         "v_vm-101-disk-0", sparse=True)         # linked clone
    for disk in (0, 1):
        backend.create_volume(f"v_vm-102-disk-{disk}", G, True, "16K")
    backend.create_target(f"{PREFIX}:vm-102-0", False)            # per guest
    backend.add_lun(f"{PREFIX}:vm-102-0", "v_vm-102-disk-0", 0)
    backend.add_lun(f"{PREFIX}:vm-102-0", "v_vm-102-disk-1", 1)
    backend.create_volume("v_pveB_vm-100-disk-0", G, True, "16K")  # cluster B
    return storage


def names(storage):
    return [v["name"] for v in storage.list_volumes()]


def test_vendor_objects_are_listed_as_the_guests_use_them(vendor_pool):
    volumes = {v["name"]: v for v in vendor_pool.list_volumes()}
    assert set(volumes) >= {"base-100-disk-0", "vm-101-disk-0",
                            "vm-102-disk-0", "vm-102-disk-1"}
    assert volumes["vm-101-disk-0"]["origin"] == \
        "base-100-disk-0@v_vm-101-disk-0"


def test_a_vendor_template_without_base_snapshot_is_linked_cloned(
        vendor_pool):
    clone = vendor_pool.clone_volume("base-100-disk-0", "vm-103-disk-0")
    assert clone["origin"].startswith("base-100-disk-0@")
    vendor_pool.delete_volume("vm-103-disk-0")
    vendor_pool.delete_volume("vm-101-disk-0")     # the vendor's clone
    left = vendor_pool.backend.list_snapshots("v_base-100-disk-0")
    assert left == [], "hidden snapshots behind the clones must go with them"
    vendor_pool.delete_volume("base-100-disk-0")


def test_a_per_guest_target_is_reused_and_its_other_luns_left_alone(
        vendor_pool):
    here = Here(vendor_pool.config)
    attached = vendor_pool.attach_volume("vm-102-disk-1", here)
    assert attached["target"] == f"{PREFIX}:vm-102-0"
    assert attached["lun"] == 1
    vendor_pool.detach_volume("vm-102-disk-1", here)
    luns = vendor_pool.backend.target_luns(f"{PREFIX}:vm-102-0")
    assert luns == {"v_vm-102-disk-0": 0}, "only its own LUN goes"


def test_luns_per_target_puts_a_guests_volumes_in_shared_targets(
        make_storage):
    storage = make_storage(target_prefix=PREFIX, luns_per_target=2)
    here = Here(storage.config)
    for disk in range(3):
        storage.create_volume(f"vm-300-disk-{disk}", "1G")
    storage.create_volume("vm-301-disk-0", "1G")
    got = {}
    for name in ("vm-300-disk-0", "vm-300-disk-1", "vm-300-disk-2",
                 "vm-301-disk-0"):
        attached = storage.attach_volume(name, here)
        got[name] = (attached["target"], attached["lun"])
    assert got["vm-300-disk-0"][0] == got["vm-300-disk-1"][0] == \
        f"{PREFIX}:vm-300-0"
    assert got["vm-300-disk-0"][1] != got["vm-300-disk-1"][1]
    assert got["vm-300-disk-2"][0] == f"{PREFIX}:vm-300-1"
    assert got["vm-301-disk-0"][0] == f"{PREFIX}:vm-301-0"   # not shared
    storage.detach_volume("vm-300-disk-0", here)
    assert storage.target("vm-300-disk-1")["target"] == f"{PREFIX}:vm-300-0"
    storage.detach_volume("vm-300-disk-1", here)
    with pytest.raises(errors.NotFound):
        storage.target("vm-300-disk-1")
    assert all(t.name != f"{PREFIX}:vm-300-0"
               for t in storage.backend.list_targets())


def test_a_cluster_prefix_sees_only_its_own_volumes(vendor_pool,
                                                    make_storage):
    cluster_a = make_storage(target_prefix="iqn.2025-06.cluster-a:",
                             cluster_prefix="pveA")
    assert names(cluster_a) == []
    made = cluster_a.create_volume("vm-100-disk-0", "1G")
    assert made["name"] == "vm-100-disk-0"
    assert made["appliance_name"] == "v_pveA_vm-100-disk-0"
    cluster_b = make_storage(target_prefix="iqn.2025-06.cluster-b:",
                             cluster_prefix="pveB")
    assert names(cluster_b) == ["vm-100-disk-0"]          # B's, not A's
    assert names(cluster_a) == ["vm-100-disk-0"]
    cluster_a.create_snapshot("vm-100-disk-0", "s1")
    assert [s["name"] for s in cluster_b.list_snapshots("vm-100-disk-0")] \
        == []
    cluster_a.delete_volume("vm-100-disk-0", recursive=True)
    assert names(cluster_b) == ["vm-100-disk-0"]


def test_clusters_sharing_a_target_prefix_never_share_a_target(make_storage):
    cluster_a = make_storage(target_prefix=PREFIX, cluster_prefix="pveA")
    cluster_b = make_storage(target_prefix=PREFIX, cluster_prefix="pveB")
    here = Here(cluster_a.config)
    for cluster in (cluster_a, cluster_b):
        cluster.create_volume("vm-100-disk-0", "1G")
    cluster_a.attach_volume("vm-100-disk-0", here)
    with pytest.raises(errors.Busy, match="target_prefix"):
        cluster_b.attach_volume("vm-100-disk-0", here)
