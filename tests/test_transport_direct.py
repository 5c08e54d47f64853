"""iscsi-direct against a real tgtd, read and written by QEMU's initiator.

The fake backend serves its volumes through tgtd on loopback
(``fake_tgt_portal``); ``jdss volume attach`` returns the iscsi:// URL a
Proxmox VM would get, and qemu-io reads and writes blocks through it.
"""

import os
import shutil
import subprocess
import time

import pytest

from jdss.backends.tgt import TgtMirror
from tests.conftest import jdss_command, run_on_terminal, write_config
from tests.emulator import free_port
from tests.tgt_io import (MB, attach, jdss, pattern_at, qemu_io,
                          skip_without_tools)

skip_without_tools()


@pytest.fixture
def tgt_config(tmp_path):
    """A fake-backend config served through a tgtd of this test's own."""
    port = free_port()
    config = write_config(tmp_path / "jdss.yaml",
                          fake_tgt_portal=f"127.0.0.1:{port}",
                          transport="iscsi-direct", thin_provision=True,
                          rest_api_addresses=["127.0.0.1"], target_port=port)
    yield config
    TgtMirror(f"127.0.0.1:{port}", str(tmp_path / "state"),
              "Pool-0").stop_daemon()






def test_snapshot_clone_and_rollback_keep_the_right_bytes(tgt_config):
    jdss(tgt_config, "volume", "create", "vm-100-disk-0", "--size", "64M")
    url = attach(tgt_config, "vm-100-disk-0")
    port = tgt_config.read_text().split("fake_tgt_portal: 127.0.0.1:")[1]
    port = port.split()[0]
    assert url == (f"iscsi://127.0.0.1:{port}/"
                   "iqn.2021-10.iscsi:pool-0:vm-100-disk-0/1")
    assert attach(tgt_config, "vm-100-disk-0") == url       # idempotent

    assert qemu_io(url, f"write -P 0x41 0 {MB}").returncode == 0
    jdss(tgt_config, "snapshot", "create", "vm-100-disk-0", "s1")
    assert qemu_io(url, f"write -P 0x42 0 {MB}").returncode == 0
    assert pattern_at(url, 0x42)

    snap_url = attach(tgt_config, "vm-100-disk-0", "--snapshot", "s1")
    assert snap_url != url
    assert pattern_at(snap_url, 0x41)
    refused = qemu_io(snap_url, f"write -P 0x43 0 {MB}")
    assert refused.returncode != 0
    assert "write protected" in refused.stdout + refused.stderr

    jdss(tgt_config, "volume", "clone", "vm-100-disk-0", "vm-101-disk-0",
         "--snapshot", "s1")
    clone_url = attach(tgt_config, "vm-101-disk-0")
    assert pattern_at(clone_url, 0x41)

    listed = subprocess.run(["iscsi-ls", "-s", url.rsplit("/", 2)[0]],
                            capture_output=True, text=True, timeout=60)
    assert "iqn.2021-10.iscsi:pool-0:vm-100-disk-0" in listed.stdout
    assert "iqn.2021-10.iscsi:pool-0:vm-101-disk-0" in listed.stdout

    jdss(tgt_config, "volume", "detach", "vm-100-disk-0", "--snapshot", "s1")
    jdss(tgt_config, "volume", "detach", "vm-100-disk-0", "--snapshot", "s1")
    assert not pattern_at(snap_url, 0x41)       # export of the clone gone
    jdss(tgt_config, "snapshot", "rollback", "vm-100-disk-0", "s1")
    assert pattern_at(url, 0x41)                 # rolled back in place

    for name in ("vm-101-disk-0", "vm-100-disk-0"):
        jdss(tgt_config, "volume", "detach", name)
    jdss(tgt_config, "volume", "delete", "vm-101-disk-0")
    jdss(tgt_config, "volume", "delete", "vm-100-disk-0", "--recursive")
    assert jdss(tgt_config, "volume", "list", "-f", "value").stdout == ""
    images = tgt_config.parent / "state" / "Pool-0.images"
    assert sorted(p.name for p in images.glob("*.img")) == []


def test_chap_refuses_initiators_without_the_secret(tgt_config, tmp_path):
    text = tgt_config.read_text() + "chap_enabled: true\nchap_user: pve\n"
    tgt_config.write_text(text)
    jdss(tgt_config, "volume", "create", "vm-200-disk-0", "--size", "16M")
    url = attach(tgt_config, "vm-200-disk-0")
    assert url.startswith("iscsi://pve%")
    assert qemu_io(url, f"write -P 0x55 0 {MB}").returncode == 0
    assert pattern_at(url, 0x55)
    anonymous = "iscsi://" + url.split("@", 1)[1]
    refused = qemu_io(anonymous, f"read 0 {MB}")
    assert refused.returncode != 0
    wrong = url.replace(url.split("%")[1].split("@")[0], "wrong-secret-123")
    assert qemu_io(wrong, f"read 0 {MB}").returncode != 0
    jdss(tgt_config, "volume", "detach", "vm-200-disk-0")
    assert qemu_io(url, f"read 0 {MB}").returncode != 0


def test_attach_of_missing_snapshot_leaves_nothing(tgt_config):
    jdss(tgt_config, "volume", "create", "vm-300-disk-0", "--size", "16M")
    result = jdss(tgt_config, "volume", "attach", "vm-300-disk-0",
                  "--snapshot", "nope", check=False)
    assert result.returncode == 4
    assert "snapshot 'nope'" in result.stderr
    shown = jdss(tgt_config, "target", "show", "vm-300-disk-0", check=False)
    assert shown.returncode == 4


def test_detach_keeps_export_another_initiator_still_uses(tgt_config):
    """Live migration: the source detaches while the target's QEMU reads."""
    jdss(tgt_config, "volume", "create", "vm-400-disk-0", "--size", "16M")
    url = attach(tgt_config, "vm-400-disk-0")
    holder = subprocess.Popen(["qemu-io", "-f", "raw", "-c", "sleep 4000",
                               url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        portal = tgt_config.read_text().split("fake_tgt_portal: ")[1].split()[0]
        mirror = TgtMirror(portal, "", "Pool-0")
        for _ in range(50):              # until tgtd lists the session
            sessions = mirror.sessions("iqn.2021-10.iscsi:pool-0:vm-400-disk-0")
            if sessions:
                break
            time.sleep(0.1)
        assert sessions, "qemu-io never logged in"
        jdss(tgt_config, "volume", "detach", "vm-400-disk-0")
        assert jdss(tgt_config, "target", "show",
                    "vm-400-disk-0").returncode == 0     # kept
    finally:
        holder.wait(timeout=30)
    jdss(tgt_config, "volume", "detach", "vm-400-disk-0")
    gone = jdss(tgt_config, "target", "show", "vm-400-disk-0", check=False)
    assert gone.returncode == 4                           # now removed


def test_export_import_round_trip_is_byte_identical(tgt_config, tmp_path):
    jdss(tgt_config, "volume", "create", "vm-500-disk-0", "--size", "16M")
    url = attach(tgt_config, "vm-500-disk-0")
    assert jdss(tgt_config, "volume", "path", "vm-500-disk-0", "-f",
                "value", "-c", "path").stdout.strip() == url
    assert qemu_io(url, f"write -P 0x61 0 {MB}").returncode == 0
    assert qemu_io(url, f"write -P 0x62 {8 * MB} {MB}").returncode == 0
    stream = tmp_path / "vm-500-disk-0.raw+size"
    with open(stream, "wb") as out:
        subprocess.run([jdss_command(), "-c", str(tgt_config), "volume",
                        "export", "vm-500-disk-0"], stdout=out, check=True,
                       timeout=120)
    data = stream.read_bytes()
    assert int.from_bytes(data[:8], "little") == 16 * MB
    assert len(data) == 8 + 16 * MB
    with open(stream, "rb") as source:
        subprocess.run([jdss_command(), "-c", str(tgt_config), "volume",
                        "import", "vm-501-disk-0"], stdin=source,
                       check=True, timeout=120)
    copy_url = attach(tgt_config, "vm-501-disk-0")
    assert pattern_at(copy_url, 0x61, 0)
    assert pattern_at(copy_url, 0x62, 8 * MB)
    assert pattern_at(copy_url, 0x00, 4 * MB)
    images = tgt_config.parent / "state" / "Pool-0.images"
    assert (images / "v_vm-500-disk-0.img").read_bytes() == \
        (images / "v_vm-501-disk-0.img").read_bytes()
    # the import attached vm-501 itself and detached it again
    for name in ("vm-500-disk-0", "vm-501-disk-0"):
        jdss(tgt_config, "volume", "detach", name)


def test_export_and_import_show_progress_on_a_terminal_only(tgt_config,
                                                             tmp_path):
    jdss(tgt_config, "volume", "create", "vm-510-disk-0", "--size", "8M")
    stream = tmp_path / "vm-510-disk-0.raw+size"
    export = [jdss_command(), "-c", str(tgt_config), "volume", "export",
              "vm-510-disk-0"]
    code, data, terminal = run_on_terminal(export)
    assert code == 0, terminal
    assert "exporting: 8.0 MiB of 8.0 MiB (100%)" in terminal
    stream.write_bytes(data)
    with open(stream, "rb") as source:
        code, _, terminal = run_on_terminal(
            [jdss_command(), "-c", str(tgt_config), "volume", "import",
             "vm-511-disk-0"], stdin=source)
    assert code == 0, terminal
    assert "importing: 8.0 MiB of 8.0 MiB (100%)" in terminal

    with open(stream, "rb") as source:
        quiet = subprocess.run(export[:-2] + ["import", "vm-512-disk-0"],
                               stdin=source, capture_output=True,
                               timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_chap_secret_never_on_qemu_img_command_line(tgt_config, tmp_path):
    """export/import through QEMU's initiator with CHAP: the password goes
    to qemu-img in a 0600 secret file, not in its arguments (ps) nor in
    its environment."""
    text = tgt_config.read_text() + "chap_enabled: true\nchap_user: pve\n"
    tgt_config.write_text(text)
    jdss(tgt_config, "volume", "create", "vm-520-disk-0", "--size", "8M")
    url = attach(tgt_config, "vm-520-disk-0")
    secret = url.split("%", 1)[1].split("@", 1)[0]
    assert qemu_io(url, f"write -P 0x71 0 {MB}").returncode == 0
    real = shutil.which("qemu-img")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "qemu-img.calls"
    wrapper = bin_dir / "qemu-img"
    wrapper.write_text("#!/bin/sh\n"
                       f"printf '%s\\n' \"$*\" >> {record}\n"
                       f"env >> {record}\n"
                       f"exec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    stream = tmp_path / "vm-520.raw+size"
    with open(stream, "wb") as out:
        subprocess.run([jdss_command(), "-c", str(tgt_config), "volume",
                        "export", "vm-520-disk-0"], stdout=out, check=True,
                       timeout=120, env=env)
    # tgt keeps one password per CHAP user: one CHAP target at a time
    jdss(tgt_config, "volume", "detach", "vm-520-disk-0")
    with open(stream, "rb") as source:
        subprocess.run([jdss_command(), "-c", str(tgt_config), "volume",
                        "import", "vm-521-disk-0"], stdin=source,
                       check=True, timeout=120, env=env)
    calls = record.read_text()
    assert calls.count("convert") == 2 and "password-secret" in calls
    assert "PATH=" in calls                     # the environment was seen
    assert secret not in calls
    assert pattern_at(attach(tgt_config, "vm-521-disk-0"), 0x71)
