"""The fake pool's state file: readers never wait for a writer, writers
not for each other's flushes, and a change answered as done survives a
crash of the machine."""

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from jdss.backends.store import StateStore
from jdss.backends.tgt import TgtMirror
from jdss.errors import BackendError
from tests import sandbox
from tests.conftest import ROOT, in_thread_at, python_script
from tests.emulator import free_port

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
    """The new state is flushed once the pool is free again (the next
    change does not wait for that flush), kept as the flushed copy, and
    the copy's name with it."""
    synced = _flushes(store, monkeypatch)
    with store.transaction() as model:
        _grow(model)
    state = os.stat(store.path).st_ino
    directory = os.stat(store.directory).st_ino
    assert synced == [(False, state, True), (True, directory, True)]
    assert os.stat(store.flushed_path).st_ino == state
    assert sorted(os.listdir(store.directory)) == [
        "Pool-0.json", "Pool-0.json.flushed", "Pool-0.lock",
        "Pool-0.lock.flush"]


def _serial(path):
    with open(path, "rb") as handle:
        return json.loads(handle.read())["serial"]


def test_one_flush_covers_the_changes_made_while_another_flushed(
        store, monkeypatch):
    """Writers that commit while the flush is busy find their changes on
    disk after the next flush, not one flush each."""
    busy = os.open(store.flush_lock_path, os.O_RDWR)
    fcntl.flock(busy, fcntl.LOCK_EX)
    failures = []

    def resize(size):
        try:
            _resize(store, size)
        except Exception as exc:      # pragma: no cover - reported below
            failures.append(exc)
    writers = [threading.Thread(target=resize, args=(size * G,))
               for size in (2, 3, 4)]
    try:
        for writer in writers:
            writer.start()
        _wait_for_serial(store, 4)
        synced = _flushes(store, monkeypatch)
    finally:
        os.close(busy)
        for writer in writers:
            writer.join(10)
    assert not failures and not any(w.is_alive() for w in writers)
    assert [s for s in synced if not s[0]] == [
        (False, os.stat(store.path).st_ino, True)]
    assert _serial(store.flushed_path) == 4


def _wait_for_serial(store, serial):
    deadline = time.monotonic() + 10
    while _serial(store.path) < serial and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _serial(store.path) == serial, "the writers did not commit"


def test_a_rename_racing_the_link_is_tried_again(store, monkeypatch,
                                                 caplog):
    """link() fails with ENOENT when a rename replaces the state at that
    moment (the name never missing): the flush links the newer state."""
    real_link, missed = os.link, []

    def racing(source, target, **kwargs):
        if len(missed) < 2:
            missed.append(source)
            raise FileNotFoundError(2, "No such file or directory")
        real_link(source, target, **kwargs)
    monkeypatch.setattr(os, "link", racing)
    _resize(store, 2 * G)
    assert len(missed) == 2 and "may not be on disk" not in caplog.text
    assert os.stat(store.flushed_path).st_ino == os.stat(store.path).st_ino
    assert _serial(store.flushed_path) == 2


def test_a_flush_that_cannot_lock_is_said_and_the_change_kept(store,
                                                              caplog):
    os.unlink(store.flush_lock_path)
    os.mkdir(store.flush_lock_path)      # cannot be opened to lock
    _resize(store, 2 * G)
    assert _size(store) == 2 * G
    assert "may not be on disk yet" in caplog.text


def test_a_state_put_back_from_a_copy_goes_on_from_the_flushed_serial(
        store):
    """A state file put back with an older serial: the next change still
    gets one above the flushed copy's, so it is flushed, not taken as
    flushed already."""
    with open(store.path, "rb") as handle:
        old = handle.read()
    _resize(store, 2 * G)
    _resize(store, 3 * G)
    with open(f"{store.path}.copy", "wb") as handle:
        handle.write(old)
    os.replace(f"{store.path}.copy", store.path)
    _resize(store, 4 * G)
    assert _serial(store.path) == _serial(store.flushed_path) == 4
    assert os.stat(store.flushed_path).st_ino == os.stat(store.path).st_ino


def test_a_state_that_cannot_be_opened_is_an_error_not_the_copy(
        store, monkeypatch):
    """Only damaged content sends a reader to the flushed copy: a state
    file that cannot be opened now (too many open files) may be newer."""
    _resize(store, 2 * G)
    real_open = open

    def crowded(path, *args, **kwargs):
        if path == store.path:
            raise OSError(24, "Too many open files")
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr("jdss.backends.store.open", crowded, raising=False)
    with pytest.raises(BackendError, match="Too many open files"):
        _resize(store, 3 * G)
    monkeypatch.undo()
    assert _size(store) == 2 * G


def _resize(store, size):
    with store.transaction() as model:
        model.resize_volume("v_vm-100-disk-0", size)


def test_without_hard_links_the_flushed_copy_is_a_copy(store,
                                                       monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", refuse)
    _resize(store, 2 * G)
    with open(store.path, "rb") as state, \
            open(store.flushed_path, "rb") as flushed:
        assert state.read() == flushed.read()
    assert _serial(store.flushed_path) == 2
    assert stat.S_IMODE(os.stat(store.flushed_path).st_mode) == 0o600


def test_a_damaged_state_is_read_from_the_flushed_copy(store, caplog):
    _resize(store, 2 * G)
    os.unlink(store.path)
    with open(store.path, "wb") as handle:
        handle.truncate(4096)    # a crash can leave a file of zeros
    assert _size(store) == 2 * G
    assert "Pool-0.json is unreadable" in caplog.text
    _resize(store, 3 * G)        # the next change mends the state file
    assert _serial(store.path) == _serial(store.flushed_path) == 3
    assert _size(store) == 3 * G


def test_a_state_that_is_not_an_object_is_damaged(store, caplog):
    _resize(store, 2 * G)
    os.unlink(store.path)
    with open(store.path, "w", encoding="utf-8") as handle:
        handle.write("[]")
    assert _size(store) == 2 * G
    assert "not a JSON object: list" in caplog.text


def test_a_damaged_state_without_a_flushed_copy_is_an_error(store):
    for path in (store.path, store.flushed_path):
        os.unlink(path)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write('{"serial":1,"version"')
    with pytest.raises(BackendError, match="Pool-0.json is unreadable"):
        _size(store)


def test_a_pool_made_anew_goes_on_from_the_flushed_serial(store):
    """A state file removed by hand makes an empty pool; its serials go on
    from the flushed copy's, or its changes would count as flushed."""
    os.unlink(store.path)
    with store.transaction() as model:
        model.create_volume("v_vm-101-disk-0", G, True, "16K")
    assert _serial(store.path) == _serial(store.flushed_path) == 2
    with store.read() as model:
        assert list(model.volumes) == ["v_vm-101-disk-0"]


def test_a_failed_directory_flush_is_said_and_the_change_kept(
        store, monkeypatch, caplog):
    _flushes(store, monkeypatch, fail_directory=True)
    with store.transaction() as model:
        _grow(model)
    assert _size(store) == 2 * G
    assert "may not be on disk yet: Input/output error" in caplog.text


def test_a_killed_writers_file_is_replaced(store):
    with open(store.next_path, "w", encoding="utf-8") as handle:
        handle.write('{"serial":2,"version"')     # killed while writing
    _resize(store, 2 * G)
    assert not os.path.exists(store.next_path)
    assert _size(store) == 2 * G


def test_a_state_that_cannot_be_saved_is_an_error_and_no_change(
        store, monkeypatch):
    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(BackendError, match="cannot save the state of pool "
                       "Pool-0 in .*: No space left on device"):
        _resize(store, 2 * G)
    monkeypatch.undo()
    assert _size(store) == G
    assert not os.path.exists(store.next_path)


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


def _nice(thread_id=0):
    return os.getpriority(os.PRIO_PROCESS, thread_id)


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0,
                               reason="a higher priority needs root")


@ROOT_ONLY
def test_the_lock_holder_alone_runs_ahead_and_only_while_it_holds(
        store, monkeypatch):
    holding, release = threading.Event(), threading.Event()
    seen, flushed_at = {}, []
    flush = store._flush

    def timed_flush(serial):
        flushed_at.append(_nice())
        flush(serial)

    monkeypatch.setattr(store, "_flush", timed_flush)

    def hold():
        os.setpriority(os.PRIO_PROCESS, 0, 0)
        with store.transaction() as model:
            _grow(model)
            holding.set()
            release.wait(10)
        seen["holder after"] = _nice()

    def wait():
        os.setpriority(os.PRIO_PROCESS, 0, 0)
        with store.transaction() as model:
            seen["waiter once it holds"] = _nice()
            model.resize_volume("v_vm-100-disk-0", 3 * G)

    others = _nice()
    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.3)                  # blocked on the pool's lock
        seen["holder"] = _nice(holder.native_id)
        seen["waiter"] = _nice(waiter.native_id)
        seen["others"] = _nice()
    finally:
        release.set()
        holder.join(10)
    waiter.join(10)
    assert seen == {"holder": -10, "waiter": 0, "others": others,
                    "holder after": 0, "waiter once it holds": -10}
    assert flushed_at == [0, 0]
    assert _size(store) == 3 * G


def test_a_failed_change_gives_its_priority_back(store):
    inside = []

    def fail():
        with pytest.raises(RuntimeError):
            with store.transaction():
                inside.append(_nice())
                raise RuntimeError("the change fails")
        return _nice()

    own, after = in_thread_at(0, fail)
    assert after == own
    assert inside == [-10 if os.geteuid() == 0 else own]


@ROOT_ONLY
def test_a_tgtd_started_by_the_lock_holder_runs_at_its_own_level(tmp_path):
    if not shutil.which("tgtd"):
        pytest.skip("needs tgtd")
    portal = f"127.0.0.1:{free_port()}"
    mirror = TgtMirror(portal, str(tmp_path), "Pool-0")
    store = StateStore(str(tmp_path), "Pool-0", 100 * G, mirror=mirror)

    def change():
        with store.transaction() as model:
            model.create_volume("v_vm-100-disk-0", G, True, "16K")

    try:
        in_thread_at(0, change)
        tgtds = [pid for pid in os.listdir("/proc") if pid.isdigit()
                 and f"portal={portal}".encode() in _cmdline(pid)]
        assert mirror.started and len(tgtds) == 1
        assert _nice(int(tgtds[0])) == 0
    finally:
        mirror.stop_daemon()


def _cmdline(pid):
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline",
                                            "rb") as handle:
        return handle.read()
    return b""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")
def test_without_the_right_to_run_ahead_changes_are_made_as_before():
    script = textwrap.dedent("""
        import os, shutil, tempfile
        from jdss.backends.store import StateStore
        os.setgid(65534)             # imported first: nobody may not read
        os.setuid(65534)             # this checkout
        asked = []
        setpriority = os.setpriority
        os.setpriority = lambda *args: asked.append(args) or \\
            setpriority(*args)
        directory = tempfile.mkdtemp()
        try:
            store = StateStore(directory, "Pool-0", 1 << 40)
            own = os.getpriority(os.PRIO_PROCESS, 0)
            inside = []
            for size in (1 << 30, 2 << 30):
                with store.transaction() as model:
                    inside.append(os.getpriority(os.PRIO_PROCESS, 0))
                    if size == 1 << 30:
                        model.create_volume("v", size, True, "16K")
                    else:
                        model.resize_volume("v", size)
            with store.read() as model:
                size = model.volume_record("v")["volsize"]
            print(own, inside, os.getpriority(os.PRIO_PROCESS, 0), size,
                  len(asked))
        finally:
            shutil.rmtree(directory)
    """)
    proc = python_script(script, env={"PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    own = _nice()
    # the same level throughout, and asked once only
    assert proc.stdout.split() == [str(own), f"[{own},", f"{own}]",
                                   str(own), str(2 << 30), "1"]


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


POWER_CUT = textwrap.dedent("""
    import fcntl, os, shutil, subprocess, sys, threading, time
    from jdss.backends.store import StateStore

    G = 1 << 30
    device, image, cut, mnt = sys.argv[1:]
    subprocess.run(["mkfs.ext4", "-q", device], check=True)
    # noauto_da_alloc: ext4 then keeps a rename over a file without its
    # data, as XFS does; commit=600: nothing reaches the disk unless flushed
    subprocess.run(["mount", "-o", "noauto_da_alloc,commit=600", device,
                    mnt], check=True)
    state = os.path.join(mnt, "state")
    pool, other = (StateStore(state, name, 100 * G)
                   for name in ("Pool-0", "Pool-1"))
    with pool.transaction() as model:
        model.create_volume("v_vm-100-disk-0", G, True, "16K")
    with pool.transaction() as model:
        model.resize_volume("v_vm-100-disk-0", 2 * G)   # answered as done

    def resize():
        with pool.transaction() as model:
            model.resize_volume("v_vm-100-disk-0", 3 * G)

    busy = os.open(pool.flush_lock_path, os.O_RDWR)
    fcntl.flock(busy, fcntl.LOCK_EX)
    writer = threading.Thread(target=resize)
    writer.start()
    deadline = time.monotonic() + 30
    while open(pool.path, "rb").read(12) != b'{"serial":3,':
        assert time.monotonic() < deadline and writer.is_alive()
        time.sleep(0.01)
    # committed, not yet flushed; the other pool's flush writes the
    # rename to the journal, the renamed data stays in memory
    with other.transaction() as model:
        model.create_volume("v_vm-101-disk-0", G, True, "16K")
    shutil.copyfile(image, cut)    # the power cut: what the disk holds
    os.close(busy)
    writer.join()
    subprocess.run(["umount", mnt], check=True)
""")


READ_BACK = textwrap.dedent("""
    import os, subprocess, sys
    from jdss.backends.store import StateStore

    device, mnt = sys.argv[1:]
    subprocess.run(["mount", device, mnt], check=True)   # replays the journal
    pool = StateStore(os.path.join(mnt, "state"), "Pool-0", 1 << 40)
    with pool.read() as model:
        print(model.volume_record("v_vm-100-disk-0")["volsize"])
""")


def test_a_power_cut_keeps_every_change_answered_as_done(tmp_path):
    """On a real ext4 file system, a copy of its disk taken while a change
    is committed but not yet flushed (this leaves the state file empty
    where the file system keeps a rename without its data): the pool
    reads back with the change answered before it (or with the next, if
    the disk got its data after all)."""
    sandbox.require("unshare", "losetup", "mkfs.ext4", "mount")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    image, cut = tmp_path / "loop.img", tmp_path / "cut.img"
    with sandbox.loop_device(str(tmp_path)) as device:
        _in_namespace(POWER_CUT, device, image, cut, mnt)
    cut.rename(image)
    with sandbox.loop_device(str(tmp_path), size=None) as device:
        size = _in_namespace(READ_BACK, device, mnt)
    assert int(size) in (2 * G, 3 * G)


def _in_namespace(script, *args):
    """Run Python ``script`` in a mount namespace of its own (its mounts
    go with it); its output."""
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable,
         "-c", script, *map(str, args)],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert run.returncode == 0, run.stderr
    return run.stdout
