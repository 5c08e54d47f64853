"""raw+size export and import: every byte, no leftovers, no total limit."""

import os
import subprocess
import threading
import time

import pytest

from jdss import errors, stream
from tests.conftest import jdss_command
from tests.test_transport_direct import tgt_config  # noqa: F401
from tests.tgt_io import MB, attach, jdss, pattern_at, qemu_io


def raw_stream(data):
    return stream.HEADER.pack(len(data)) + data


def feed(data, *, stall_after=None):
    """A pipe's read end carrying ``data``; the writer may stall."""
    reader, writer = os.pipe()

    def write():
        with os.fdopen(writer, "wb") as out:
            out.write(data if stall_after is None else data[:stall_after])
            out.flush()
            if stall_after is not None:
                time.sleep(3)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return reader, thread


def test_import_onto_an_existing_device_writes_zero_chunks_too(tmp_path):
    """The old bug: zero chunks were skipped, leaving old data behind."""
    target = tmp_path / "existing.img"
    target.write_bytes(b"\xee" * (3 * stream.CHUNK))
    data = b"\x01" * stream.CHUNK + bytes(stream.CHUNK) + b"\x02" * 10
    reader, thread = feed(data)
    stream.import_into(str(target), len(data), reader, fresh=False)
    os.close(reader)
    thread.join()
    assert target.read_bytes() == data


def test_a_fresh_volume_keeps_its_holes(tmp_path):
    target = tmp_path / "fresh.img"
    target.write_bytes(b"")
    data = bytes(8 * stream.CHUNK) + b"\x03"
    reader, thread = feed(data)
    stream.import_into(str(target), len(data), reader, fresh=True)
    os.close(reader)
    thread.join()
    assert target.read_bytes() == data
    assert os.stat(target).st_blocks * 512 < len(data) // 2    # sparse


def test_a_stalled_stream_fails_after_the_idle_timeout(tmp_path):
    target = tmp_path / "t.img"
    target.write_bytes(b"")
    reader, thread = feed(b"\x05" * MB, stall_after=1000)
    started = time.monotonic()
    with pytest.raises(stream.Stalled, match="moved no data for 1 s"):
        stream.import_into(str(target), MB, reader, fresh=True, idle=1.0)
    assert time.monotonic() - started < 2.5
    os.close(reader)
    thread.join()


def test_a_short_stream_is_refused():
    reader, thread = feed(b"\x00" * 3)
    with pytest.raises(errors.InvalidInput, match="no raw\\+size header"):
        stream.read_header(reader)
    os.close(reader)
    thread.join()


def run_import(config, name, data, *options):
    return subprocess.run([jdss_command(), "-c", str(config), "volume",
                           "import", name, *options], input=data,
                          capture_output=True, timeout=120)


def test_import_over_an_existing_volume_replaces_every_byte(tgt_config):
    jdss(tgt_config, "volume", "create", "vm-600-disk-0", "--size", "8M")
    url = attach(tgt_config, "vm-600-disk-0")
    assert qemu_io(url, f"write -P 0x77 0 {8 * MB}").returncode == 0
    data = b"\x11" * MB + bytes(6 * MB) + b"\x22" * MB
    result = run_import(tgt_config, "vm-600-disk-0", raw_stream(data))
    assert result.returncode == 0, result.stderr
    assert pattern_at(url, 0x11, 0)
    assert pattern_at(url, 0x00, MB, 6 * MB)          # no old 0x77 left
    assert pattern_at(url, 0x22, 7 * MB)


def test_import_new_never_writes_over_an_existing_volume(tgt_config):
    """What the plugin runs: another node may have made the name it chose
    since it looked; then the import fails and that volume keeps its
    bytes."""
    jdss(tgt_config, "volume", "create", "vm-605-disk-0", "--size", "4M")
    url = attach(tgt_config, "vm-605-disk-0")
    assert qemu_io(url, f"write -P 0x66 0 {4 * MB}").returncode == 0
    result = run_import(tgt_config, "vm-605-disk-0",
                        raw_stream(b"\x11" * (4 * MB)), "--new")
    assert result.returncode == 5, result.stderr
    assert b"vm-605-disk-0' already exists" in result.stderr
    assert pattern_at(url, 0x66, 0, 4 * MB)
    made = run_import(tgt_config, "vm-606-disk-0",
                      raw_stream(b"\x12" * (4 * MB)), "--new")
    assert made.returncode == 0, made.stderr
    assert pattern_at(attach(tgt_config, "vm-606-disk-0"), 0x12, 0, 4 * MB)


def test_broken_import_removes_the_volume_it_made(tgt_config):
    data = raw_stream(b"\x33" * (4 * MB))
    broken = run_import(tgt_config, "vm-610-disk-0", data[:2 * MB])
    assert broken.returncode != 0
    assert b"ended" in broken.stderr and b"removed volume" in broken.stderr
    assert jdss(tgt_config, "volume", "show", "vm-610-disk-0",
                check=False).returncode == 4
    assert jdss(tgt_config, "target", "show", "vm-610-disk-0",
                check=False).returncode == 4
    retried = run_import(tgt_config, "vm-610-disk-0", data)     # migration
    assert retried.returncode == 0, retried.stderr
    assert pattern_at(attach(tgt_config, "vm-610-disk-0"), 0x33, 0, 4 * MB)


def test_broken_import_keeps_a_volume_it_did_not_make(tgt_config):
    jdss(tgt_config, "volume", "create", "vm-620-disk-0", "--size", "4M")
    broken = run_import(tgt_config, "vm-620-disk-0",
                        raw_stream(b"\x44" * (4 * MB))[:MB])
    assert broken.returncode != 0
    assert jdss(tgt_config, "volume", "show",
                "vm-620-disk-0").returncode == 0


def test_export_of_a_snapshot_taken_before_a_resize_has_its_size(
        tgt_config, tmp_path):
    jdss(tgt_config, "volume", "create", "vm-630-disk-0", "--size", "4M")
    url = attach(tgt_config, "vm-630-disk-0")
    assert qemu_io(url, f"write -P 0x55 0 {4 * MB}").returncode == 0
    jdss(tgt_config, "snapshot", "create", "vm-630-disk-0", "small")
    jdss(tgt_config, "volume", "resize", "vm-630-disk-0", "--size", "8M")
    exported = subprocess.run(
        [jdss_command(), "-c", str(tgt_config), "volume", "export",
         "vm-630-disk-0", "--snapshot", "small"], capture_output=True,
        timeout=120)
    assert exported.returncode == 0, exported.stderr
    assert stream.HEADER.unpack(exported.stdout[:8])[0] == 4 * MB
    assert exported.stdout[8:] == b"\x55" * (4 * MB)
    current = subprocess.run(
        [jdss_command(), "-c", str(tgt_config), "volume", "export",
         "vm-630-disk-0"], capture_output=True, timeout=120)
    assert stream.HEADER.unpack(current.stdout[:8])[0] == 8 * MB
