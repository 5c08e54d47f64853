"""Volume locks: one change at a time, on the node and across the cluster."""

import fcntl
import os
import subprocess
import sys
import time

import pytest

from jdss import config as jconfig
from jdss import errors, locks
from tests.conftest import ROOT

HOLDER = """
import sys
from jdss import config, locks
cfg = config.parse({"backend": "fake", "pool": sys.argv[2]})
with locks.volume_lock(cfg, sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def holder(name, pool="Pool-0", env=None):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, name, pool],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT,
                            env=dict(os.environ, **(env or {})))
    assert proc.stdout.readline().strip() == "held"
    return proc


def release(proc):
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()


def cfg(pool="Pool-0", **values):
    return jconfig.parse(dict({"backend": "fake", "pool": pool}, **values))


def try_lock(path):
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(handle)


@pytest.fixture
def no_cluster(monkeypatch, tmp_path):
    monkeypatch.setenv("JDSS_PVE_ROOT", str(tmp_path / "no-pve"))


@pytest.mark.parametrize("name", ["vm-100-disk-0", "../../etc/passwd",
                                  "a b;$(x)", "é" * 200])
def test_a_held_volume_lock_excludes_others_until_released(name,
                                                           no_cluster):
    path = locks.lock_path("Pool-0", name)
    assert os.path.dirname(path) == locks.lock_dir()
    proc = holder(name)
    try:
        assert not try_lock(path)
        assert try_lock(locks.lock_path("Pool-0", name + "x"))
        assert try_lock(locks.lock_path("Pool-1", name))
    finally:
        release(proc)
    assert try_lock(path)


def test_waits_are_bounded_with_a_clear_error(no_cluster):
    proc = holder("vm-1-disk-0")
    try:
        started = time.monotonic()
        with pytest.raises(errors.Busy, match=r"volume 'vm-1-disk-0' is being "
                           r"changed by another jdss process of this node; "
                           r"gave up waiting after 1 s"):
            with locks.volume_lock(cfg(lock_timeout=1), "vm-1-disk-0"):
                pass
        assert 1 <= time.monotonic() - started < 3
    finally:
        release(proc)


def test_the_lock_directory_is_trusted_only_if_it_is_ours(monkeypatch,
                                                          tmp_path,
                                                          no_cluster):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory of another user")
    path = tmp_path / "jdss"
    monkeypatch.setattr(locks, "NODE_LOCK_DIR", str(path))
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)              # made by a local user
    with pytest.raises(errors.ConfigError, match="not a directory of user 0"):
        locks.lock_dir()
    os.chown(path, 0, 0)
    path.chmod(0o777)
    with pytest.raises(errors.ConfigError, match="mode 0700"):
        locks.lock_dir()
    path.rmdir()
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    path.symlink_to(target)                   # a symlink to a directory
    with pytest.raises(errors.ConfigError, match="a symlink"):
        locks.lock_dir()
    path.unlink()
    assert locks.lock_dir() == str(path)
    assert oct(os.lstat(path).st_mode & 0o777) == "0o700"


def test_lock_files_are_not_followed_through_symlinks(monkeypatch, tmp_path,
                                                      no_cluster):
    monkeypatch.setattr(locks, "NODE_LOCK_DIR", str(tmp_path / "jdss"))
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, locks.lock_path("Pool-0", "vm-1-disk-0"))
    with pytest.raises(errors.ConfigError, match="cannot use lock file .*: "
                       "Too many levels of symbolic links"):
        with locks.volume_lock(cfg(), "vm-1-disk-0"):
            pass
    assert victim.read_text() == "keep"


def test_no_lock_file_for_a_name_jdss_refuses(storage, no_cluster):
    before = set(os.listdir(locks.lock_dir()))
    for bad in ("bad name", "../x", ""):
        with pytest.raises(errors.InvalidInput):
            storage.create_snapshot(bad, "s1")
        with pytest.raises(errors.InvalidInput):
            storage.resize_volume(bad, "1G")
    assert set(os.listdir(locks.lock_dir())) == before


def test_storage_changes_take_the_volume_lock(storage, monkeypatch):
    storage.create_volume("v", "1G")
    taken = []
    real = locks.volume_lock

    def recording(config, name, *args):
        taken.append(name)
        return real(config, name, *args)

    monkeypatch.setattr(locks, "volume_lock", recording)
    storage.create_snapshot("v", "s1")
    storage.resize_volume("v", "2G")
    storage.rollback("v", "s1")
    storage.clone_volume("v", "c", snapshot="s1")
    storage.delete_volume("c")
    storage.delete_snapshot("v", "s1")
    storage.create_volume("n", "1G")
    storage.rename_volume("v", "r")
    # a volume made (created, cloned, renamed) under its new name's lock
    # too, the two taken in one order
    assert taken == ["v", "v", "v", "c", "v", "c", "v", "n", "r", "v"]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A Proxmox root whose priv/lock stands for pmxcfs's."""
    root = tmp_path / "pve"
    (root / "priv" / "lock").mkdir(parents=True)
    monkeypatch.setenv("JDSS_PVE_ROOT", str(root))
    return root / "priv" / "lock"


def test_on_a_proxmox_node_the_lock_is_cluster_wide(cluster):
    env = {"JDSS_PVE_ROOT": os.environ["JDSS_PVE_ROOT"]}
    proc = holder("vm-1-disk-0", env=env)    # another node, same pmxcfs
    try:
        held = os.listdir(cluster)
        assert len(held) == 1 and held[0].startswith("jdss-Pool-0_vm-1-disk")
        with pytest.raises(errors.Busy, match="another jdss process \\(this "
                                              "or another node\\)"):
            with locks.volume_lock(cfg(lock_timeout=1), "vm-1-disk-0"):
                pass
        with locks.volume_lock(cfg(lock_timeout=1), "vm-2-disk-0"):
            pass                                 # other volumes are free
    finally:
        release(proc)
    assert os.listdir(cluster) == []
    with locks.volume_lock(cfg(lock_timeout=1), "vm-1-disk-0"):
        pass


def test_a_lock_left_by_a_dead_node_expires_as_in_pmxcfs(cluster,
                                                         monkeypatch):
    stale = cluster / ("jdss-" + locks._key("Pool-0", "vm-1-disk-0"))
    stale.mkdir()
    old = time.time() - locks.CLUSTER_EXPIRY - 5
    os.utime(stale, (old, old))
    with locks.volume_lock(cfg(lock_timeout=5), "vm-1-disk-0"):
        assert stale.exists()                    # ours now
    assert not stale.exists()


def test_a_held_cluster_lock_is_kept_fresh(cluster, monkeypatch):
    monkeypatch.setattr(locks, "REFRESH_EVERY", 0.1)
    with locks.volume_lock(cfg(), "vm-1-disk-0"):
        path = cluster / os.listdir(cluster)[0]
        old = time.time() - 1000
        os.utime(path, (old, old))
        time.sleep(0.5)
        assert time.time() - os.stat(path).st_mtime < 5
