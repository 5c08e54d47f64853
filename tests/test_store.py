"""The fake pool's state file: readers never wait for a writer."""

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


def _in_transaction(store, change):
    """A writer holding the pool's lock until the returned event is set."""
    inside, release = threading.Event(), threading.Event()

    def write():
        with store.transaction() as model:
            change(model)
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=write)
    thread.start()
    assert inside.wait(10)
    return thread, release


def test_a_reader_sees_the_last_commit_while_a_writer_holds_the_pool(store):
    thread, release = _in_transaction(
        store, lambda model: model.resize_volume("v_vm-100-disk-0", 2 * G))
    try:
        sizes = []
        reader = threading.Thread(target=lambda: sizes.append(
            _size(store)))
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "the reader waited for the writer"
        assert sizes == [G]
    finally:
        release.set()
        thread.join()
    assert _size(store) == 2 * G


def test_a_failed_transaction_leaves_readers_the_old_state(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as model:
            model.resize_volume("v_vm-100-disk-0", 4 * G)
            raise RuntimeError("the change fails")
    assert _size(store) == G


def test_with_nas_volumes_readers_wait_until_their_files_follow(store):
    with store.transaction() as model:
        model.create_nas_volume("files", 10 * G)
    thread, release = _in_transaction(
        store, lambda model: model.delete_nas_volume("files"))
    seen = []
    reader = threading.Thread(target=lambda: seen.append(_nas_names(store)))
    reader.start()
    reader.join(0.5)
    waited = reader.is_alive()
    release.set()
    thread.join()
    reader.join(5)
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
    thread, release = _in_transaction(
        store, lambda model: model.resize_volume("v_vm-100-disk-0", 2 * G))
    sizes = []
    reader = threading.Thread(target=lambda: sizes.append(_size(store)))
    reader.start()
    reader.join(0.5)
    waited = reader.is_alive()
    release.set()
    thread.join()
    reader.join(5)
    assert waited and sizes == [2 * G]


def _size(store):
    with store.read() as model:
        return int(model.volume_record("v_vm-100-disk-0")["volsize"])
