"""An HA failover is ridden out; a read deadline is a deadline; transient
appliance errors are retried without making anything twice.

Failovers are the emulator's timed refusals: every address refuses for a
few seconds, then answers again with the state intact (real ones last 60
to 120 s; the window is configuration, short here).
"""

import json
import socket
import subprocess
import threading
import time

import pytest

from jdss import config as jconfig
from jdss import drivers, errors
from jdss.storage import Storage
from tests.conftest import jdss_command, write_config
from tests.emulator import Emulator, free_port

G = 1 << 30
OUTAGE = 4


@pytest.fixture
def appliance(tmp_path, tls_cert):
    running = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",))
    yield running
    running.stop()


def storage_of(emulator, directory, **values):
    directory.mkdir(exist_ok=True)
    values = dict({"rest_api_deadline": 1, "rest_api_failover_window": 20,
                   "rest_api_connect_timeout": 0.5}, **values)
    path = write_config(directory / "rest.yaml", **emulator.config(**values))
    cfg = jconfig.load(str(path))
    return Storage(cfg, drivers.load_backend(cfg))


class FakeTransport:
    def connect(self, properties):
        return f"iscsi://{properties['target_portal']}/" \
               f"{properties['target_iqn']}/{properties['target_lun']}"

    def disconnect(self, properties):
        pass

    def initiator_name(self):
        return "iqn.2024-01.node:a"


OPERATIONS = {
    "create": lambda s: s.create_volume("vm-9-disk-0", G),
    "snapshot": lambda s: s.create_snapshot("vm-1-disk-0", "s2"),
    "rollback": lambda s: s.rollback("vm-2-disk-0", "s1"),
    "clone": lambda s: s.clone_volume("vm-3-disk-0", "vm-30-disk-0",
                                      snapshot="s1"),
    "attach": lambda s: s.attach_volume("vm-4-disk-0", FakeTransport()),
    "delete": lambda s: s.delete_volume("vm-5-disk-0"),
}


def prepare(storage):
    for n in range(1, 6):
        storage.create_volume(f"vm-{n}-disk-0", G)
    for n in (2, 3):
        storage.create_snapshot(f"vm-{n}-disk-0", "s1")


def final(storage):
    return ({v["name"] for v in storage.list_volumes()},
            [s["name"] for s in storage.list_snapshots("vm-1-disk-0")],
            storage.target("vm-4-disk-0")["target"])


def test_changes_ride_out_a_failover_and_complete_once(appliance,
                                                       tmp_path):
    healthy = storage_of(appliance, tmp_path / "setup")
    prepare(healthy)
    results, threads = {}, []

    def run(name, action):
        storage = storage_of(appliance, tmp_path / name)
        started = time.monotonic()
        try:
            action(storage)
            results[name] = ("ok", time.monotonic() - started)
        except errors.JdssError as exc:
            results[name] = (str(exc), time.monotonic() - started)

    appliance.faults({"action": "refuse", "seconds": OUTAGE})
    started = time.monotonic()
    for name, action in OPERATIONS.items():
        threads.append(threading.Thread(target=run, args=(name, action)))
        threads[-1].start()
    with pytest.raises(errors.Unreachable) as read:
        storage_of(appliance, tmp_path / "status").pool()
    read_time = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    assert {n: r[0] for n, r in results.items()} == \
        {n: "ok" for n in OPERATIONS}
    assert all(OUTAGE - 1 < t < 15 for _, t in results.values()), results
    assert read_time < 2.5 and "within" in str(read.value)
    volumes, snapshots, target = final(healthy)
    assert "vm-9-disk-0" in volumes and "vm-30-disk-0" in volumes
    assert "vm-5-disk-0" not in volumes
    assert snapshots == ["s2"] and target
    creations = [p for _, m, p, s in appliance.requests()
                 if m == "POST" and s.startswith("201")]
    assert sum(p.endswith("/volumes") for p in creations) == 6  # 5 + 1


@pytest.mark.parametrize("method, path, action", [
    ("POST", "/volumes$", lambda s: s.create_volume("vm-9-disk-0", G)),
    ("POST", "/snapshots$",
     lambda s: s.create_snapshot("vm-1-disk-0", "s2")),
    ("POST", "/clone$",
     lambda s: s.clone_volume("vm-3-disk-0", "vm-30-disk-0", snapshot="s1")),
    ("POST", "/rollback$",
     lambda s: s.rollback("vm-2-disk-0", "s1", force=True)),
    ("DELETE", "/volumes/v_vm-5-disk-0$",
     lambda s: s.delete_volume("vm-5-disk-0")),
])
def test_failover_right_after_a_change_was_applied(appliance, tmp_path,
                                                   method, path, action):
    """The appliance applies the request, drops the answer and fails
    over: after the window the change is found done, not made again and
    not reported as failed."""
    healthy = storage_of(appliance, tmp_path / "setup")
    prepare(healthy)
    healthy.create_snapshot("vm-2-disk-0", "s2")   # accepted for the rollback
    before = len(appliance.requests())
    appliance.faults({"action": "drop_after", "method": method,
                      "path": path, "count": 1, "failover": OUTAGE})
    storage = storage_of(appliance, tmp_path / "op")
    started = time.monotonic()
    action(storage)
    assert OUTAGE - 1 < time.monotonic() - started < 15
    sent = [s for _, m, p, s in appliance.requests()[before:]
            if m == method and p.endswith(path.rstrip("$"))]
    assert sent[0].endswith("-dropped")
    assert not any(s.startswith("20") for s in sent[1:]), sent
    assert healthy.list_snapshots("vm-2-disk-0")[0]["name"] == "s1"


def test_reads_keep_their_short_bound(appliance, tmp_path):
    storage_of(appliance, tmp_path / "setup").create_volume("v", G)
    appliance.faults({"action": "refuse", "seconds": OUTAGE})
    for read in (lambda s: s.pool(), lambda s: s.list_volumes(),
                 lambda s: s.volume("v")):
        started = time.monotonic()
        with pytest.raises(errors.Unreachable):
            read(storage_of(appliance, tmp_path / "read"))
        assert time.monotonic() - started < 2.5


# deadlines -------------------------------------------------------------------
def timed_pool_show(config, deadline=5):
    started = time.monotonic()
    proc = subprocess.run([jdss_command(), "-c", str(config), "--set",
                           f"rest_api_deadline={deadline}", "pool", "show",
                           "-f", "json"], capture_output=True, text=True,
                          timeout=120)
    return proc, time.monotonic() - started


@pytest.mark.parametrize("rule", [
    {"action": "delay", "seconds": 60},                # hanging
    {"action": "delay", "seconds": 7},                 # slow
    {"action": "refuse"},                              # refusing
    {"action": "error", "status": 503},                # failing
], ids=["hanging", "slow", "refusing", "failing"])
def test_pool_show_returns_within_its_deadline(tmp_path, tls_cert, rule):
    running = Emulator(str(tmp_path), *tls_cert,
                       listens=["127.0.0.2", "127.0.0.3"],
                       pools=("Pool-0",))
    try:
        config = write_config(tmp_path / "rest.yaml", **running.config(
            rest_api_deadline=20, rest_api_read_timeout=60))
        running.faults(rule)
        proc, elapsed = timed_pool_show(config)
        assert proc.returncode == errors.Unreachable.exit_code, proc.stderr
        assert elapsed < 6.5, elapsed
        message = proc.stderr.strip().splitlines()[-1]
        seconds = float(message.split("within ")[1].split(" s")[0])
        assert 4.5 <= seconds <= elapsed        # the real time, told
    finally:
        running.stop()


def test_a_hanging_address_leaves_the_other_time_to_answer(tmp_path,
                                                           tls_cert):
    running = Emulator(str(tmp_path), *tls_cert,
                       listens=["127.0.0.2", "127.0.0.3"],
                       pools=("Pool-0",))
    try:
        config = write_config(tmp_path / "rest.yaml", **running.config(
            rest_api_read_timeout=60))
        running.faults({"action": "delay", "seconds": 60,
                        "listen": f"127.0.0.2:{running.port}"})
        proc, elapsed = timed_pool_show(config)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["name"] == "Pool-0"
        assert elapsed < 4.5                  # 2.5 s for each address
    finally:
        running.stop()


def test_an_address_that_never_answers_the_handshake(tmp_path):
    """A listener that accepts no connection: TCP connects (backlog), TLS
    never starts."""
    port = free_port(["127.0.0.2"])
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.2", port))
    black_hole.listen(64)
    try:
        config = write_config(tmp_path / "rest.yaml", backend="joviandss",
                              rest_api_addresses=["127.0.0.2"],
                              rest_api_port=port, rest_api_connect_timeout=30,
                              driver_ssl_cert_verify=False)
        proc, elapsed = timed_pool_show(config, deadline=3)
        assert proc.returncode == errors.Unreachable.exit_code, proc.stderr
        assert elapsed < 4.5
    finally:
        black_hole.close()


# transient appliance errors --------------------------------------------------
@pytest.mark.parametrize("kind", ["cfgparser", "scstadmin"])
@pytest.mark.parametrize("apply", [False, True])
def test_transient_errors_are_retried_and_nothing_is_made_twice(
        appliance, tmp_path, kind, apply):
    storage = storage_of(appliance, tmp_path / "s", rest_api_deadline=10)
    storage.create_volume("vm-1-disk-0", G)
    appliance.faults(
        {"action": "fail", "kind": kind, "method": "POST",
         "path": "/volumes$", "count": 2, "apply": apply},
        {"action": "fail", "kind": kind, "method": "POST",
         "path": "/luns$", "count": 1, "apply": apply})
    before = len(appliance.requests())
    storage.create_volume("vm-2-disk-0", G)
    export = storage.create_target("vm-1-disk-0")
    assert export["lun"] == 0
    posts = [(p.rsplit("/", 1)[1], s)
             for _, m, p, s in appliance.requests()[before:] if m == "POST"]
    failed = (f"500-{kind}")
    if apply:          # applied, then the error: found, not sent again
        assert posts == [("volumes", failed), ("targets", "201"),
                         ("luns", failed)]
    else:
        assert posts == [("volumes", failed), ("volumes", failed),
                         ("volumes", "201"), ("targets", "201"),
                         ("luns", failed), ("luns", "201")]
    assert sorted(v["name"] for v in storage.list_volumes()) == \
        ["vm-1-disk-0", "vm-2-disk-0"]
    assert storage.target("vm-1-disk-0")["lun"] == 0


def test_a_busy_appliance_fails_within_the_deadline(appliance, tmp_path):
    storage = storage_of(appliance, tmp_path / "s", rest_api_deadline=2,
                         rest_api_failover_window=2)
    appliance.faults({"action": "fail", "kind": "cfgparser"})
    started = time.monotonic()
    with pytest.raises(errors.BackendError, match="stayed busy"):
        storage.create_volume("vm-1-disk-0", G)
    assert time.monotonic() - started < 3
    appliance.faults()
    assert storage.list_volumes() == []


def test_failover_window_is_documented_and_in_the_message(appliance,
                                                          tmp_path):
    storage = storage_of(appliance, tmp_path / "s", rest_api_deadline=1,
                         rest_api_failover_window=2)
    appliance.faults({"action": "refuse"})
    with pytest.raises(errors.Unreachable) as info:
        storage.create_volume("vm-1-disk-0", G)
    assert "rest_api_failover_window 2 s" in str(info.value)
    with pytest.raises(errors.Unreachable) as info:
        storage.pool()
    assert "rest_api_deadline 1 s" in str(info.value)
    json.dumps(str(info.value))


@pytest.mark.parametrize("lost, method, path", [
    (["create", "vm-300-disk-0", "--size", "1G"], "POST",
     "/pools/Pool-0/volumes$"),
    (["clone", "base-100-disk-0", "vm-300-disk-0"], "POST",
     "/volumes/v_base-100-disk-0/clone$"),
    (["rename", "vm-100-disk-0", "vm-300-disk-0"], "PUT",
     "/volumes/v_vm-100-disk-0$"),
], ids=["create", "clone", "rename"])
def test_a_lost_request_never_takes_anothers_volume(appliance, tmp_path,
                                                    lost, method, path):
    """Two jdss make one name: the first one's request (create, clone or
    rename) is lost before the appliance applied it, and while it looks
    the name up a create by the second would make it. The name's lock
    keeps the second out until the first is done, so exactly one succeeds
    and the other is told the name exists (the plugin then takes the next
    free one): neither reports the other's volume as its own."""
    config = write_config(tmp_path / "rest.yaml", **appliance.config(
        rest_api_deadline=20))

    def jdss(*args):
        return subprocess.Popen(
            [jdss_command(), "-c", str(config), "volume", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for source in ("base-100-disk-0", "vm-100-disk-0"):
        assert jdss("create", source, "--size", "1G").wait(timeout=60) == 0
    appliance.faults(
        {"action": "drop", "method": method, "path": path, "count": 1},
        {"action": "delay", "method": "GET",
         "path": "/volumes/v_vm-300-disk-0$", "count": 1, "seconds": 4})
    first = jdss(*lost)
    time.sleep(2)
    second = jdss("create", "vm-300-disk-0", "--size", "2G")
    codes = [proc.wait(timeout=120) for proc in (first, second)]
    assert sorted(codes) == [0, 5], [p.stderr.read() for p in (first, second)]
    listed = subprocess.run([jdss_command(), "-c", str(config), "volume",
                             "show", "vm-300-disk-0", "-f", "json"],
                            capture_output=True, text=True, check=True)
    made = json.loads(listed.stdout)
    # the volume is the one the call that succeeded made
    assert (made["size"] == 2 * G) == (codes[1] == 0), made
