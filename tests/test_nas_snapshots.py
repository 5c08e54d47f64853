"""NAS snapshots and clones, and the files behind NAS volumes, on every
backend (the fake, and the emulator as newer and older firmware)."""

import os
import time

import pytest

from jdss import errors
from jdss.backends.nasdata import NasData

M = 1 << 20
G = 1 << 30


def data(storage, make_storage):
    """The directories behind the storage's NAS volumes: the fake's state
    directory, or the emulator's."""
    root = make_storage.emulator.state_dir if make_storage.emulator \
        else storage.config.state_dir
    return NasData(root, storage.config.pool)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def read(path):
    with open(path) as handle:
        return handle.read()


def test_snapshots_keep_the_files_they_were_taken_with(storage,
                                                       make_storage):
    files = data(storage, make_storage)
    storage.create_nas_volume("ds", "1G")
    assert os.path.isdir(files.path("ds"))
    write(os.path.join(files.path("ds"), "images/100/disk.raw"), "before")
    first = storage.create_nas_snapshot("ds", "100_s1")
    assert (first["name"], first["reused"]) == ("100_s1", False)
    assert abs(first["creation"] - time.time()) < 5
    write(os.path.join(files.path("ds"), "images/100/disk.raw"), "after")
    storage.create_nas_snapshot("ds", "101_s1")
    assert read(os.path.join(files.path("ds", "100_s1"),
                             "images/100/disk.raw")) == "before"
    assert read(os.path.join(files.path("ds", "101_s1"),
                             "images/100/disk.raw")) == "after"
    assert [s["name"] for s in storage.list_nas_snapshots("ds")] == \
        ["100_s1", "101_s1"]
    assert [s["name"] for s in storage.list_nas_snapshots(
        "ds", prefix="101_")] == ["101_s1"]
    storage.backend.create_nas_clone("ds", "100_s1", "ds-copy")
    assert read(os.path.join(files.path("ds-copy"),
                             "images/100/disk.raw")) == "before"
    assert storage.nas_volume("ds-copy")["origin"] == "ds@100_s1"
    assert storage.backend.nas_snapshot_clones("ds", "100_s1") == ["ds-copy"]
    with pytest.raises(errors.Busy, match="has clones: ds-copy"):
        storage.delete_nas_snapshot("ds", "100_s1")
    storage.backend.delete_nas_clone("ds", "100_s1", "ds-copy")
    assert not os.path.exists(files.path("ds-copy"))
    storage.delete_nas_snapshot("ds", "100_s1")
    assert not os.path.exists(files.path("ds", "100_s1"))
    assert [s["name"] for s in storage.list_nas_snapshots("ds")] == \
        ["101_s1"]
    storage.delete_nas_volume("ds")
    assert not os.path.exists(files.path("ds"))
    assert not os.path.exists(files.path("ds", "101_s1"))


def test_a_snapshot_of_moments_ago_is_reused_an_old_one_refused(storage):
    storage.create_nas_volume("ds", "1G")
    made = storage.create_nas_snapshot("ds", "100_s1")
    again = storage.create_nas_snapshot("ds", "100_s1", reuse_within=60)
    assert again["reused"] is True
    assert (again["guid"], again["creation"]) == (made["guid"],
                                                  made["creation"])
    with pytest.raises(errors.AlreadyExists, match="already exists, made "
                       ".* not by this snapshot: delete it"):
        storage.create_nas_snapshot("ds", "100_s1")
    time.sleep(2.1)
    with pytest.raises(errors.AlreadyExists, match=r"\(\d s ago\)"):
        storage.create_nas_snapshot("ds", "100_s1", reuse_within=1)
    assert len(storage.list_nas_snapshots("ds")) == 1


def test_errors_name_the_nas_objects(storage):
    with pytest.raises(errors.NotFound, match="NAS volume 'gone' not found"):
        storage.create_nas_snapshot("gone", "1_s")
    with pytest.raises(errors.NotFound, match="NAS volume 'gone' not found"):
        storage.list_nas_snapshots("gone")
    storage.create_nas_volume("ds", "1G")
    with pytest.raises(errors.NotFound,
                       match="snapshot '1_s' of NAS volume 'ds' not found"):
        storage.delete_nas_snapshot("ds", "1_s")
    for bad in ("", "-x", "a/b", "a b", "x" * 300):
        with pytest.raises(errors.InvalidInput):
            storage.create_nas_snapshot("ds", bad)
    with pytest.raises(errors.InvalidInput, match="t_ is reserved"):
        storage.create_nas_volume("t_mine", "1G")
    assert storage.list_nas_snapshots("ds") == []


def test_usage_is_what_the_files_take(storage, make_storage):
    files = data(storage, make_storage)
    storage.create_nas_volume("ds", "100M")
    empty = storage.nas_volume("ds")
    assert empty["size"] == 100 * M and empty["free"] == 100 * M - \
        empty["used"]
    with open(os.path.join(files.path("ds"), "data"), "wb") as handle:
        handle.write(os.urandom(3 * M))
        handle.truncate(50 * M)          # a hole: no space taken
    view = storage.nas_volume("ds")
    assert 3 * M <= view["used"] < 4 * M
    assert (view["size"], view["free"]) == (100 * M, 100 * M - view["used"])
    assert storage.list_nas_volumes()[0]["used"] == view["used"]


def test_snapshots_copy_files_with_their_holes(storage, make_storage):
    files = data(storage, make_storage)
    storage.create_nas_volume("ds", "10G")
    image = os.path.join(files.path("ds"), "images/100/vm-100-disk-0.raw")
    os.makedirs(os.path.dirname(image))
    with open(image, "wb") as handle:
        handle.truncate(4 * G)
        handle.seek(G)
        handle.write(b"A" * M)
    os.chmod(image, 0o640)
    storage.create_nas_snapshot("ds", "100_s1")
    copy = os.path.join(files.path("ds", "100_s1"),
                        "images/100/vm-100-disk-0.raw")
    info = os.stat(copy)
    assert info.st_size == 4 * G and info.st_blocks * 512 < 8 * M
    assert info.st_mode & 0o777 == 0o640
    with open(copy, "rb") as handle:
        handle.seek(G)
        assert handle.read(M) == b"A" * M
