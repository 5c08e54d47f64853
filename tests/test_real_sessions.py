"""Real iSCSI sessions: the fake backend and the emulator serve their
volumes through tgtd, and the "in use by another node" guards are tested
with two real initiators (qemu-io, each with its own initiator name).
"""

import concurrent.futures
import json
import subprocess
import time

import pytest
import requests

from jdss.backends.tgt import TgtMirror
from tests.conftest import write_config
from tests.emulator import PASSWORD, Emulator, free_port
from tests.tgt_io import (MB, attach, jdss, pattern_at, qemu_io,
                          skip_without_tools)

skip_without_tools()
NODE_A = "iqn.1993-08.org.debian:01:node-a"
NODE_B = "iqn.1993-08.org.debian:01:node-b"


class Served:
    """A pool served through a tgtd of this test's own."""

    def __init__(self, backend, directory, tls_cert):
        self.port = free_port()
        self.portal = f"127.0.0.1:{self.port}"
        self.directory = directory
        self.emulator = None
        common = {"transport": "iscsi-direct", "thin_provision": True,
                  "target_port": self.port}
        if backend == "fake":
            self.state = directory / "state"
            self.values = dict(common, fake_tgt_portal=self.portal,
                               rest_api_addresses=["127.0.0.1"])
        else:
            self.emulator = Emulator(str(directory), *tls_cert,
                                     tgt_portal=self.portal)
            self.state = directory / "emulator-state"
            self.values = self.emulator.config(**common)

    def config(self, pool="Pool-0", **values):
        return write_config(self.directory / f"{pool}.yaml", pool=pool,
                            **dict(self.values, **values))

    def stop(self):
        if self.emulator is not None:
            self.emulator.stop()          # stops the tgtd it started
        TgtMirror(self.portal, str(self.state), "Pool-0").stop_daemon()


@pytest.fixture(params=["fake", "joviandss"])
def served(request, tmp_path, tls_cert):
    running = Served(request.param, tmp_path, tls_cert)
    yield running
    running.stop()






class Guest:
    """A running guest: a qemu-io session from ``initiator`` on ``url``."""

    def __init__(self, url, initiator, read_only=False):
        portal, iqn, lun = url[len("iscsi://"):].split("/")
        options = (f"driver=iscsi,transport=tcp,portal={portal},"
                   f"target={iqn},lun={lun},initiator-name={initiator}")
        self.proc = subprocess.Popen(
            ["qemu-io", "--image-opts"] + (["-r"] if read_only else [])
            + ["-c", "sleep 120000", options],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stderr.close()


def sessions(config, name):
    """Initiator names the backend reports on ``name``'s target."""
    from jdss import config as jconfig
    from jdss import drivers
    from jdss.storage import Storage
    cfg = jconfig.load(str(config))
    storage = Storage(cfg, drivers.load_backend(cfg))
    return storage.backend.target_sessions(storage.target(name)["target"])


def wait_for_sessions(config, name, expected, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(sessions(config, name))
        if found == sorted(expected):
            return found
        time.sleep(0.1)
    raise AssertionError(f"sessions {found}, expected {expected}")


def test_iscsi_direct_through_the_rest_backend_moves_real_data(tmp_path,
                                                               tls_cert):
    served = Served("joviandss", tmp_path, tls_cert)
    try:
        config = served.config()
        jdss(config, "volume", "create", "vm-100-disk-0", "--size", "64M")
        url = attach(config, "vm-100-disk-0")
        assert url == (f"iscsi://{served.portal}/iqn.2021-10.iscsi:pool-0:"
                       "vm-100-disk-0/1")       # tgt's LUN 0 is taken
        assert qemu_io(url, f"write -P 0x41 0 {MB}").returncode == 0
        jdss(config, "snapshot", "create", "vm-100-disk-0", "s1")
        assert qemu_io(url, f"write -P 0x42 0 {MB}").returncode == 0
        snap = attach(config, "vm-100-disk-0", "--snapshot", "s1")
        assert pattern_at(snap, 0x41) and pattern_at(url, 0x42)
        jdss(config, "volume", "clone", "vm-100-disk-0", "vm-101-disk-0",
             "--snapshot", "s1")
        assert pattern_at(attach(config, "vm-101-disk-0"), 0x41)
        jdss(config, "volume", "detach", "vm-100-disk-0", "--snapshot",
             "s1")
        jdss(config, "snapshot", "rollback", "vm-100-disk-0", "s1")
        assert pattern_at(url, 0x41)
        image = served.state / "Pool-0.images" / "v_vm-100-disk-0.img"
        assert image.read_bytes()[:MB] == b"\x41" * MB
    finally:
        served.stop()


def test_sessions_report_what_tgtd_sees(tmp_path, tls_cert):
    served = Served("joviandss", tmp_path, tls_cert)
    guests = []
    try:
        config = served.config()
        jdss(config, "volume", "create", "vm-1-disk-0", "--size", "16M")
        url = attach(config, "vm-1-disk-0")
        guests = [Guest(url, NODE_A), Guest(url, NODE_B)]
        wait_for_sessions(config, "vm-1-disk-0", [NODE_A, NODE_B])
        iqn = url.split("/")[3]
        answer = requests.get(
            f"https://127.0.0.1:{served.emulator.port}/api/v4/pools/Pool-0/"
            f"san/iscsi/targets/{iqn}/sessions", auth=("admin", PASSWORD),
            verify=served.emulator.cert, timeout=10).json()["data"]
        assert sorted(s["initiator_name"] for s in answer) == \
            [NODE_A, NODE_B]
        for record in answer:
            assert set(record) == {"initiator_name", "ip", "sid", "cid",
                                   "target_name"}
            assert record["ip"] == "127.0.0.1"
            assert record["target_name"] == iqn
            assert isinstance(record["sid"], int)
            assert record["cid"] == 0
        assert len({s["sid"] for s in answer}) == 2
    finally:
        for guest in guests:
            guest.stop()
        served.stop()


def test_detach_keeps_an_export_another_node_uses(served):
    """Live migration: node A's guest is gone and A detaches while node
    B's guest still runs on the volume."""
    config = served.config()
    jdss(config, "volume", "create", "vm-2-disk-0", "--size", "16M")
    url = attach(config, "vm-2-disk-0")
    on_a, on_b = Guest(url, NODE_A), Guest(url, NODE_B)
    try:
        wait_for_sessions(config, "vm-2-disk-0", [NODE_A, NODE_B])
        on_a.stop()
        wait_for_sessions(config, "vm-2-disk-0", [NODE_B])
        jdss(config, "volume", "detach", "vm-2-disk-0")
        assert jdss(config, "target", "show", "vm-2-disk-0").returncode == 0
        assert pattern_at(url, 0x00)                # B's path still serves
    finally:
        on_b.stop()
    wait_for_sessions(config, "vm-2-disk-0", [])
    jdss(config, "volume", "detach", "vm-2-disk-0")
    assert jdss(config, "target", "show", "vm-2-disk-0",
                check=False).returncode == 4


def test_exclusive_attach_sees_the_other_nodes_session(served):
    from jdss import config as jconfig
    from jdss import drivers, errors
    from jdss.storage import Storage
    from tests.test_exclusive import RecordingTransport
    config = served.config()
    jdss(config, "volume", "create", "content", "--size", "16M")
    url = attach(config, "content")
    cfg = jconfig.load(str(config))
    storage = Storage(cfg, drivers.load_backend(cfg))
    here = RecordingTransport(cfg, NODE_A)
    mine = Guest(url, NODE_A)
    try:
        wait_for_sessions(config, "content", [NODE_A])
        assert storage.attach_volume("content", here, exclusive=True)
        other = Guest(url, NODE_B)
        try:
            wait_for_sessions(config, "content", [NODE_A, NODE_B])
            with pytest.raises(errors.Busy, match=f"in use by {NODE_B}"):
                storage.attach_volume("content", here, exclusive=True)
        finally:
            other.stop()
        wait_for_sessions(config, "content", [NODE_A])
        assert storage.attach_volume("content", here, exclusive=True)
    finally:
        mine.stop()


def test_cleanup_keeps_a_leftover_in_use(served):
    """A snapshot attach that crashed left its se_ clone exported, and
    another node's guest still reads it: cleanup keeps it until then."""
    config = served.config()
    jdss(config, "volume", "create", "vm-3-disk-0", "--size", "16M")
    jdss(config, "snapshot", "create", "vm-3-disk-0", "s1")
    url = attach(config, "vm-3-disk-0", "--snapshot", "s1")
    reader = Guest(url, NODE_B, read_only=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = json.loads(jdss(config, "cleanup", "--dry-run", "-f",
                                    "json").stdout)
            if found and found[0]["action"] == "keep":
                break
            assert reader.proc.poll() is None, reader.proc.stderr.read()
            time.sleep(0.1)
        kept = json.loads(jdss(config, "cleanup", "-f", "json").stdout)
        assert [(i["kind"], i["action"]) for i in kept] == [("volume",
                                                             "keep")]
        assert NODE_B in kept[0]["reason"]
        assert pattern_at(url, 0x00)
    finally:
        reader.stop()
    removed = json.loads(jdss(config, "cleanup", "-f", "json").stdout)
    assert [(i["kind"], i["action"]) for i in removed] == [("volume",
                                                            "removed")]
    assert json.loads(jdss(config, "cleanup", "--dry-run", "-f",
                           "json").stdout) == []


def test_twenty_simultaneous_activations(served):
    config = served.config()
    names = [f"vm-{200 + n}-disk-0" for n in range(20)]
    for name in names:
        jdss(config, "volume", "create", name, "--size", "8M")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        urls = list(pool.map(lambda n: attach(config, n), names))
    assert len(set(urls)) == 20
    listed = subprocess.run(["iscsi-ls", "-s", f"iscsi://{served.portal}"],
                            capture_output=True, text=True, timeout=60)
    for url in urls:
        assert url.split("/")[3] in listed.stdout
    for index, url in enumerate(urls[:5]):
        byte = 0x30 + index
        assert qemu_io(url, f"write -P {byte:#x} 0 {MB}").returncode == 0
        assert pattern_at(url, byte)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda n: jdss(config, "volume", "detach", n), names))
    listed = subprocess.run(["iscsi-ls", "-s", f"iscsi://{served.portal}"],
                            capture_output=True, text=True, timeout=60)
    assert "iqn." not in listed.stdout


def test_two_pools_on_one_portal_keep_their_own_targets(served):
    first, second = served.config("Pool-0"), served.config("Pool-1")
    for config in (first, second):
        jdss(config, "volume", "create", "vm-5-disk-0", "--size", "8M")
    url0, url1 = attach(first, "vm-5-disk-0"), attach(second, "vm-5-disk-0")
    assert url0 != url1
    assert qemu_io(url0, f"write -P 0x11 0 {MB}").returncode == 0
    assert qemu_io(url1, f"write -P 0x22 0 {MB}").returncode == 0
    assert pattern_at(url0, 0x11) and pattern_at(url1, 0x22)
    jdss(first, "volume", "create", "vm-6-disk-0", "--size", "8M")
    attach(first, "vm-6-disk-0")                  # Pool-0 syncs again
    assert pattern_at(url1, 0x22)                 # Pool-1's still served
    jdss(first, "volume", "detach", "vm-5-disk-0")
    jdss(first, "volume", "detach", "vm-6-disk-0")
    assert pattern_at(url1, 0x22)
    jdss(second, "volume", "detach", "vm-5-disk-0")
    assert not pattern_at(url1, 0x22)
