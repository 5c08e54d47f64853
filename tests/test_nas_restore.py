"""Restoring one file from a NAS snapshot, with real mounts (bind mounts of
the NAS volume directories through the nfs-fake transport), real files and
qemu-io, on every backend. Runs as root in a mount namespace of its own."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from jdss import cleanup, drivers, errors, locks
from tests.conftest import mounts_under

M = 1 << 20
DISK = "images/100/vm-100-disk-0.raw"
OTHER = "images/101/vm-101-disk-0.qcow2"

pytestmark = pytest.mark.usefixtures("private_mounts")


def qemu_io(path, command, fmt="raw"):
    return subprocess.run(["qemu-io", "-f", fmt, "-c", command, path],
                          capture_output=True, text=True, timeout=60)


def pattern_is(path, byte, fmt="raw"):
    result = qemu_io(path, f"read -P {byte} 0 1M", fmt)
    return result.returncode == 0 and "Pattern verification failed" not in \
        result.stdout


@pytest.fixture
def mounted(make_storage, tmp_path):
    """A NAS volume 'ds' mounted at tmp_path/mnt, holding a raw disk of
    guest 100 (pattern 0x41) and a qcow2 disk of guest 101 (0x61),
    snapshot '100_s1' of that, then both disks changed (0x42, 0x62)."""
    storage = make_storage(nas_transport="nfs-fake")
    transport = drivers.load_transport(storage.config,
                                       name=storage.config.nas_transport)
    mountpoint = str(tmp_path / "mnt")
    storage.attach_nas_volume("ds", mountpoint, transport, size="1G")
    disk, other = os.path.join(mountpoint, DISK), os.path.join(mountpoint,
                                                               OTHER)
    for path, fmt in ((disk, "raw"), (other, "qcow2")):
        os.makedirs(os.path.dirname(path))
        subprocess.run(["qemu-img", "create", "-f", fmt, path, "64M"],
                       check=True, capture_output=True)
    os.chmod(disk, 0o640)
    assert qemu_io(disk, "write -P 0x41 0 1M").returncode == 0
    assert qemu_io(other, "write -P 0x61 0 1M", "qcow2").returncode == 0
    storage.create_nas_snapshot("ds", "100_s1")
    assert qemu_io(disk, "write -P 0x42 0 1M").returncode == 0
    assert qemu_io(other, "write -P 0x62 0 1M", "qcow2").returncode == 0
    yield storage, transport, mountpoint
    storage.detach_nas_volume("ds", mountpoint, transport)
    assert mounts_under(tmp_path) == []


def leftovers(storage):
    names = {v["name"] for v in storage.list_nas_volumes()}
    shares = {s["name"] for s in storage.list_shares()}
    return {"clones": sorted(n for n in names if n.startswith("t_")),
            "shares": sorted(s for s in shares if s.startswith("t_")),
            "cleanup": cleanup.find(storage)}


NOTHING = {"clones": [], "shares": [], "cleanup": []}


def restore(storage, transport, mountpoint, path=DISK, snapshot="100_s1"):
    return storage.restore_nas_file("ds", snapshot, path, mountpoint,
                                    transport)


def test_the_file_comes_back_and_nothing_else_changes(mounted, tmp_path):
    storage, transport, mountpoint = mounted
    disk = os.path.join(mountpoint, DISK)
    before = os.stat(disk)
    view = restore(storage, transport, mountpoint)
    assert view == {"nas_volume": "ds", "snapshot": "100_s1", "path": DISK,
                    "size": 64 * M}
    assert pattern_is(disk, "0x41")
    assert pattern_is(os.path.join(mountpoint, OTHER), "0x62", "qcow2")
    after = os.stat(disk)
    assert after.st_ino != before.st_ino          # renamed over, not patched
    assert after.st_mode & 0o777 == 0o640
    assert after.st_size == 64 * M and after.st_blocks * 512 < 4 * M
    assert sorted(os.listdir(os.path.dirname(disk))) == ["vm-100-disk-0.raw"]
    assert leftovers(storage) == NOTHING
    assert mounts_under(tmp_path) == [mountpoint]  # only the volume itself
    # the snapshot itself is unchanged, and a second restore works
    assert qemu_io(disk, "write -P 0x43 0 1M").returncode == 0
    restore(storage, transport, mountpoint)
    assert pattern_is(disk, "0x41")


def test_a_qcow2_file_and_a_deleted_file_come_back(mounted):
    storage, transport, mountpoint = mounted
    restore(storage, transport, mountpoint, OTHER)
    assert pattern_is(os.path.join(mountpoint, OTHER), "0x61", "qcow2")
    assert pattern_is(os.path.join(mountpoint, DISK), "0x42")
    shutil.rmtree(os.path.join(mountpoint, "images/100"))
    restore(storage, transport, mountpoint)
    assert pattern_is(os.path.join(mountpoint, DISK), "0x41")


@pytest.mark.parametrize("path, snapshot, error, message", [
    ("/etc/passwd", "100_s1", errors.InvalidInput, "relative"),
    ("../x", "100_s1", errors.InvalidInput, "relative"),
    ("images/../../x", "100_s1", errors.InvalidInput, "relative"),
    ("images/100/none.raw", "100_s1", errors.NotFound,
     "holds no file images/100/none.raw"),
    ("images/100", "100_s1", errors.NotFound, "holds no file"),
    (DISK, "100_gone", errors.NotFound,
     "snapshot '100_gone' of NAS volume 'ds' not found"),
    (DISK, "bad/name", errors.InvalidInput, "invalid NAS snapshot name"),
])
def test_bad_input_one_error_nothing_left(mounted, path, snapshot, error,
                                          message, tmp_path):
    storage, transport, mountpoint = mounted
    with pytest.raises(error, match=message):
        restore(storage, transport, mountpoint, path, snapshot)
    assert leftovers(storage) == NOTHING
    assert mounts_under(tmp_path) == [mountpoint]
    assert pattern_is(os.path.join(mountpoint, DISK), "0x42")


def test_a_link_out_of_the_volume_is_refused(mounted, tmp_path):
    storage, transport, mountpoint = mounted
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, os.path.join(mountpoint, "images/102"))
    with pytest.raises(errors.InvalidInput, match="leads out of"):
        restore(storage, transport, mountpoint, "images/102/x.raw")
    assert list(outside.iterdir()) == []
    assert leftovers(storage) == NOTHING


def test_only_where_the_volume_is_mounted(mounted, tmp_path):
    storage, transport, mountpoint = mounted
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "images/100").mkdir(parents=True)
    with pytest.raises(errors.InvalidInput, match="not mounted at"):
        restore(storage, transport, str(elsewhere))
    assert list((elsewhere / "images/100").iterdir()) == []
    assert leftovers(storage) == NOTHING


def test_a_failed_copy_removes_clone_share_and_partial_copy(mounted,
                                                            tmp_path):
    storage, transport, mountpoint = mounted
    images = os.path.join(mountpoint, "images/100")
    os.chmod(images, 0o555)
    subprocess.run(["chattr", "+i", images], check=True)
    try:
        with pytest.raises(errors.JdssError):
            restore(storage, transport, mountpoint)
    finally:
        subprocess.run(["chattr", "-i", images], check=True)
        os.chmod(images, 0o755)
    assert os.listdir(images) == ["vm-100-disk-0.raw"]
    assert pattern_is(os.path.join(mountpoint, DISK), "0x42")
    assert leftovers(storage) == NOTHING
    assert mounts_under(tmp_path) == [mountpoint]


def test_a_rerun_removes_what_an_interrupted_restore_left(mounted):
    storage, transport, mountpoint = mounted
    clone = storage.names.restore_clone_name("Pool-0", "ds", DISK)
    storage.backend.create_nas_clone("ds", "100_s1", clone)
    storage.backend.create_share(clone, f"Pool-0/{clone}")
    partial = os.path.join(mountpoint, "images/100",
                           ".vm-100-disk-0.raw.jdss-restore")
    with open(partial, "wb") as handle:
        handle.write(b"half")
    found = cleanup.find(storage)
    assert [(i["kind"], i["name"], i["action"]) for i in found] == \
        [("nas-clone", clone, "remove")]
    restore(storage, transport, mountpoint)
    assert pattern_is(os.path.join(mountpoint, DISK), "0x41")
    assert not os.path.exists(partial)
    assert leftovers(storage) == NOTHING


def test_cleanup_keeps_the_clone_of_a_running_restore(mounted):
    storage, transport, mountpoint = mounted
    clone = storage.names.restore_clone_name("Pool-0", "ds", DISK)
    storage.backend.create_nas_clone("ds", "100_s1", clone)
    storage.backend.create_share(clone, f"Pool-0/{clone}")
    with locks.nas_lock(storage.config, clone):        # "running"
        items = cleanup.remove(storage, cleanup.find(storage))
        assert [(i["name"], i["action"]) for i in items] == [(clone, "keep")]
        assert "still running" in items[0]["reason"]
    items = cleanup.remove(storage, cleanup.find(storage))
    assert [(i["name"], i["action"]) for i in items] == [(clone, "removed")]
    assert leftovers(storage) == NOTHING
    assert [s["name"] for s in storage.list_nas_snapshots("ds")] == \
        ["100_s1"]


def test_a_user_volume_of_that_shape_is_never_removed(mounted):
    """Only clones made from a snapshot can be a restore's leftover."""
    storage, transport, mountpoint = mounted
    name = "t_restore_0123456789abcdef"
    storage.backend.create_nas_volume(name, 1 << 30)
    items = cleanup.remove(storage, cleanup.find(storage))
    assert [(i["name"], i["action"]) for i in items] == [(name, "kept")]
    assert name in {v["name"] for v in storage.list_nas_volumes()}
    storage.backend.delete_nas_volume(name)


def interrupted_restore(storage):
    """What a restore killed after its clone and share leaves."""
    clone = storage.names.restore_clone_name("Pool-0", "ds", DISK)
    storage.backend.create_nas_clone("ds", "100_s1", clone)
    storage.backend.create_share(clone, f"Pool-0/{clone}")
    return clone


def test_clusters_sharing_a_pool_keep_to_their_own_clones(mounted,
                                                          make_storage):
    """With cluster_prefix, a cluster's clones carry its prefix: another
    cluster's cleanup neither lists nor removes them."""
    storage, transport, mountpoint = mounted
    cluster_a = make_storage(nas_transport="nfs-fake", cluster_prefix="pveA")
    cluster_b = make_storage(nas_transport="nfs-fake", cluster_prefix="pveB")
    clone_a, clone_b, clone = (interrupted_restore(s) for s in
                               (cluster_a, cluster_b, storage))
    assert clone_a.startswith("t_pveA_restore_")
    assert clone_b.startswith("t_pveB_restore_")
    assert clone.startswith("t_restore_")

    def found(cluster):
        return [i["name"] for i in cleanup.find(cluster)]
    assert (found(cluster_a), found(cluster_b), found(storage)) == \
        ([clone_a], [clone_b], [clone])
    cleanup.remove(cluster_a, cleanup.find(cluster_a))
    assert sorted(leftovers(storage)["clones"]) == sorted([clone_b, clone])
    # A restores the file with B's clone of the same file still there
    disk = os.path.join(mountpoint, DISK)
    assert qemu_io(disk, "write -P 0x43 0 1M").returncode == 0
    restore(cluster_a, transport, mountpoint)
    assert pattern_is(disk, "0x41")
    assert (found(cluster_a), found(cluster_b), found(storage)) == \
        ([], [clone_b], [clone])
    for cluster in cluster_b, storage:
        cleanup.remove(cluster, cleanup.find(cluster))
    assert leftovers(storage) == NOTHING


def test_a_stale_mount_is_replaced(mounted, tmp_path):
    """The NAS volume made again (its files kept) under its mount: the old
    mount is stale and the next attach mounts the volume as it is now."""
    storage, transport, mountpoint = mounted
    directory = transport.directory("127.0.0.1:/Pool-0/ds")
    shutil.copytree(directory, directory + ".new", symlinks=True)
    shutil.rmtree(directory)
    os.rename(directory + ".new", directory)
    assert not os.path.exists(os.path.join(mountpoint, DISK))
    assert transport.probe(mountpoint) == "stale"
    storage.attach_nas_volume("ds", mountpoint, transport)
    assert mounts_under(tmp_path) == [mountpoint]
    assert os.stat(mountpoint).st_ino == os.stat(directory).st_ino
    assert pattern_is(os.path.join(mountpoint, DISK), "0x42")


@pytest.fixture
def bindfs():
    if not shutil.which("bindfs"):
        pytest.skip("bindfs is not installed (make system-deps)")


def test_a_hung_mount_is_reported_in_bounded_time(make_storage, tmp_path,
                                                  bindfs):
    storage = make_storage(nas_transport="nfs-fake")
    transport = drivers.load_transport(storage.config, name="nfs-fake")
    transport.probe_timeout = 1.0
    source, mountpoint = tmp_path / "src", tmp_path / "mnt"
    source.mkdir()
    mountpoint.mkdir()
    daemon = subprocess.Popen(["bindfs", "-f", str(source),
                               str(mountpoint)])
    try:
        for _ in range(100):
            if mounts_under(mountpoint):
                break
            time.sleep(0.05)
        os.kill(daemon.pid, signal.SIGSTOP)          # the server hangs
        storage.create_nas_volume("ds", "1G")
        started = time.monotonic()
        with pytest.raises(errors.AttachFailed, match="does not answer "
                           "within 1 s"):
            storage.attach_nas_volume("ds", str(mountpoint), transport)
        assert time.monotonic() - started < 5
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
        subprocess.run(["umount", str(mountpoint)], check=True)
        daemon.wait(timeout=10)
    assert mounts_under(tmp_path) == []
