"""Node-local volume locks: one change of a volume at a time."""

import fcntl
import os
import subprocess
import sys

import pytest

from jdss import locks
from tests.conftest import ROOT

HOLDER = """
import sys
from jdss import locks
with locks.volume_lock("Pool-0", sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def try_lock(path):
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(handle)


@pytest.mark.parametrize("name", ["vm-100-disk-0", "../../etc/passwd",
                                  "a b;$(x)", "é" * 200])
def test_a_held_volume_lock_excludes_others_until_released(name):
    path = locks.lock_path("Pool-0", name)
    assert os.path.dirname(path) == locks.lock_dir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, name],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not try_lock(path)
        assert try_lock(locks.lock_path("Pool-0", name + "x"))
        assert try_lock(locks.lock_path("Pool-1", name))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert try_lock(path)


def test_storage_changes_take_the_volume_lock(storage, monkeypatch):
    storage.create_volume("v", "1G")
    taken = []
    real = locks.volume_lock

    def recording(pool, name):
        taken.append(name)
        return real(pool, name)

    monkeypatch.setattr(locks, "volume_lock", recording)
    storage.create_snapshot("v", "s1")
    storage.resize_volume("v", "2G")
    storage.rollback("v", "s1")
    storage.clone_volume("v", "c", snapshot="s1")
    storage.delete_volume("c")
    storage.delete_snapshot("v", "s1")
    assert taken == ["v", "v", "v", "v", "c", "v"]
