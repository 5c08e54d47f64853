"""The fake pool's state file: readers never wait for a writer."""

import fcntl
import os
import stat
import threading

import pytest

from jdss.backends.store import StateStore

G = 1 << 30


@pytest.fixture
def store(tmp_path):
    store = StateStore(str(tmp_path), "Pool-0", 100 * G)
    with store.transaction() as model:
        model.create_volume("v_vm-100-disk-0", G, True, "16K")
    return store


def _read_during(store, change, read, patience):
    """``read(store)`` while a writer holds the pool with ``change`` made
    but not committed: whether the reader was still waiting after
    ``patience`` seconds, and what it read (once the writer was done)."""
    inside, release = threading.Event(), threading.Event()

    def write():
        with store.transaction() as model:
            change(model)
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    seen = []
    try:
        assert inside.wait(10)
        reader = threading.Thread(target=lambda: seen.append(read(store)))
        reader.start()
        reader.join(patience)
        waited = reader.is_alive()
    finally:
        release.set()
        writer.join()
    reader.join(5)
    return waited, seen


def _grow(model):
    model.resize_volume("v_vm-100-disk-0", 2 * G)


def test_a_reader_sees_the_last_commit_while_a_writer_holds_the_pool(store):
    waited, sizes = _read_during(store, _grow, _size, patience=5)
    assert not waited, "the reader waited for the writer"
    assert sizes == [G]
    assert _size(store) == 2 * G


def _flushes(store, monkeypatch, fail_directory=False):
    """Record each fsync of a transaction's: (of a directory, inode,
    whether the pool was free then)."""
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        probe = os.open(store.lock_path, os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except BlockingIOError:
            free = False
        finally:
            os.close(probe)
        info = os.fstat(fd)
        synced.append((stat.S_ISDIR(info.st_mode), info.st_ino, free))
        if fail_directory and stat.S_ISDIR(info.st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_a_change_is_on_disk_name_and_all_when_it_returns(store,
                                                          monkeypatch):
    """The new state is flushed before it replaces the old (a machine's
    crash leaves one or the other, never a part), its name after the pool
    is free again (the next change does not wait for that flush too)."""
    synced = _flushes(store, monkeypatch)
    with store.transaction() as model:
        _grow(model)
    state = os.stat(store.path).st_ino
    directory = os.stat(store.directory).st_ino
    assert synced == [(False, state, False), (True, directory, True)]
    assert sorted(os.listdir(store.directory)) == ["Pool-0.json",
                                                   "Pool-0.lock"]


def test_a_failed_directory_flush_is_said_and_the_change_kept(
        store, monkeypatch, caplog):
    _flushes(store, monkeypatch, fail_directory=True)
    with store.transaction() as model:
        _grow(model)
    assert _size(store) == 2 * G
    assert "may not be on disk yet: Input/output error" in caplog.text


def test_a_failed_transaction_leaves_readers_the_old_state(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as model:
            model.resize_volume("v_vm-100-disk-0", 4 * G)
            raise RuntimeError("the change fails")
    assert _size(store) == G


def test_with_nas_volumes_readers_wait_until_their_files_follow(store):
    with store.transaction() as model:
        model.create_nas_volume("files", 10 * G)
    waited, seen = _read_during(
        store, lambda model: model.delete_nas_volume("files"), _nas_names,
        patience=0.5)
    assert waited and seen == [[]]


def _nas_names(store):
    with store.read() as model:
        return sorted(model.nas_volumes)


class _Mirror:
    """A mirror that records nothing: readers must wait for its writer."""
    reserved_luns = ()

    def apply(self, model):
        pass


def test_with_a_mirror_readers_wait_until_tgtd_follows(tmp_path):
    store = StateStore(str(tmp_path), "Pool-0", 100 * G, mirror=_Mirror())
    with store.transaction() as model:
        model.create_volume("v_vm-100-disk-0", G, True, "16K")
    waited, sizes = _read_during(store, _grow, _size, patience=0.5)
    assert waited and sizes == [2 * G]


def _size(store):
    with store.read() as model:
        return int(model.volume_record("v_vm-100-disk-0")["volsize"])
