"""``jdss doctor`` against a jdss-emulator, a tgtd and a stand-in node.

The appliance is the emulator (HTTPS, real login) and its iSCSI port a
real tgtd on loopback; the node is tests.nodestub's. Each check is made to
fail once, the way it fails on a node.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from jdss import doctor, hostcheck, lvmfilter
from jdss.backends.tgt import TgtMirror
from tests.conftest import jdss_command, write_config
from tests.emulator import free_port
from tests.nodestub import script

TOOLS = ("tgtd", "tgtadm")


@pytest.fixture
def tgt_port(tmp_path):
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make test installs tgt)")
    port = free_port()
    mirror = TgtMirror(f"127.0.0.1:{port}", str(tmp_path / "tgt"), "Pool-0")
    mirror.ensure_daemon()
    yield port
    mirror.stop_daemon()


@pytest.fixture
def appliance(emulator, tgt_port, tmp_path):
    """Config values for the emulator, with tgtd as its iSCSI port."""
    return emulator.config(target_port=tgt_port)


def doctor_run(node, config_path, *args, env=None, bundle=None):
    """Run ``jdss -c CONFIG doctor -f json``: (exit code, {check: row})."""
    argv = [jdss_command(), "-c", str(config_path), "doctor", "-f", "json"]
    if bundle:
        argv += ["--bundle", str(bundle)]
    proc = subprocess.run(argv + list(args), capture_output=True, text=True,
                          timeout=180,
                          env=dict(os.environ, **node.env(), **(env or {})))
    rows = json.loads(proc.stdout)
    return proc.returncode, {row["check"]: row for row in rows}, proc


def write(tmp_path, **values):
    return write_config(tmp_path / "jdss.yaml", **values)


def statuses(rows):
    return {name: row["status"] for name, row in rows.items()}


def test_a_ready_node_passes_every_check(node, appliance, tmp_path):
    config = write(tmp_path, **appliance, multipath=True)
    code, rows, proc = doctor_run(node, config)
    failed = {k: v for k, v in rows.items() if v["status"] == "FAIL"}
    assert code == 0 and not failed, failed
    name = "jdss.yaml"
    assert rows[f"{name}: control 127.0.0.1:{appliance['rest_api_port']}"][
        "detail"] == "answers, login accepted"
    assert rows[f"{name}: pool"]["detail"].startswith("Pool-0 ONLINE")
    assert rows[f"{name}: data 127.0.0.1:{appliance['target_port']}"][
        "status"] == "ok"
    assert rows[f"{name}: clock"]["status"] == "ok"
    assert rows[f"{name}: leftovers"]["detail"] == "none"
    assert rows["iscsiadm"]["detail"] == str(node.bin / "iscsiadm")
    assert rows["agent"]["status"] == "ok"
    assert rows["udev rule"]["status"] == "ok"
    if shutil.which("multipath", path="/usr/sbin:/sbin"):
        assert rows["multipath drop-in"]["status"] == "ok"
        assert "130 s" in rows["multipath drop-in"]["detail"]
    if os.path.exists("/etc/lvm/lvm.conf"):
        assert rows["LVM filter"]["status"] == "ok"
    assert all(row["fix"] == "" for row in rows.values())


def test_an_unreachable_address_and_a_closed_port_fail(node, appliance,
                                                      tmp_path):
    values = dict(appliance, rest_api_deadline=2)
    values["rest_api_addresses"] = ["127.0.0.1", "127.0.0.9"]
    code, rows, _ = doctor_run(node, write(tmp_path, **values))
    assert code == 1
    port, data = values["rest_api_port"], values["target_port"]
    down = rows[f"jdss.yaml: control 127.0.0.9:{port}"]
    assert down["status"] == "FAIL" and "refused" in down["detail"]
    assert "port" in down["fix"]
    assert rows[f"jdss.yaml: control 127.0.0.1:{port}"]["status"] == "ok"
    assert rows[f"jdss.yaml: data 127.0.0.9:{data}"]["status"] == "FAIL"
    assert rows["jdss.yaml: pool"]["status"] == "ok"   # the other answers


def test_a_wrong_password_fails_the_login(node, appliance, tmp_path):
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    config = write(tmp_path, **dict(appliance,
                                    rest_api_password_file=str(wrong)))
    code, rows, proc = doctor_run(node, config)
    row = rows[f"jdss.yaml: control 127.0.0.1:{appliance['rest_api_port']}"]
    assert code == 1 and row["status"] == "FAIL"
    assert "refused the login" in row["detail"]
    assert "rest_api_login" in row["fix"]
    assert rows["jdss.yaml: pool"]["status"] == "skip"
    assert "not-the-password" not in proc.stdout + proc.stderr


def test_a_missing_pool_fails(node, appliance, tmp_path):
    code, rows, _ = doctor_run(node, write(tmp_path, **appliance,
                                           pool="Pool-9"))
    assert code == 1
    assert rows["jdss.yaml: pool"]["status"] == "FAIL"
    assert "Pool-9" in rows["jdss.yaml: pool"]["detail"]
    assert rows["jdss.yaml: leftovers"]["status"] == "skip"


def test_a_closed_iscsi_port_fails(node, emulator, tmp_path):
    closed = free_port()
    code, rows, _ = doctor_run(node, write(
        tmp_path, **emulator.config(target_port=closed)))
    row = rows[f"jdss.yaml: data 127.0.0.1:{closed}"]
    assert code == 1 and row["status"] == "FAIL"
    assert "target_port" in row["fix"]


def test_leftovers_fail_until_cleaned_up(node, appliance, tmp_path):
    config = write(tmp_path, **appliance)
    # a temporary clone an interrupted operation left behind
    from jdss import config as jconfig, drivers
    cfg = jconfig.load(str(config))
    drivers.load_backend(cfg).create_volume("t_vm-100-disk-0_1a2b", 1 << 30,
                                            True, "16K")
    code, rows, _ = doctor_run(node, config)
    row = rows["jdss.yaml: leftovers"]
    assert code == 1 and row["status"] == "FAIL"
    assert row["detail"] == "1 leftovers: volume t_vm-100-disk-0_1a2b"
    assert row["fix"] == (f"jdss -c {config} cleanup --dry-run, then "
                          f"jdss -c {config} cleanup")
    subprocess.run([jdss_command(), "-c", str(config), "cleanup"],
                   check=True, capture_output=True, timeout=60)
    assert doctor_run(node, config)[1]["jdss.yaml: leftovers"]["status"] \
        == "ok"


@pytest.mark.parametrize("provoke, check, words", [
    ("no-iscsiadm", "iscsiadm", "open-iscsi"),
    ("no-initiator", "initiator name", "InitiatorName"),
    ("no-multipathd", "multipathd", "enable --now multipathd"),
    ("no-dropin", "multipath drop-in", "reinstall"),
    ("no-rule", "udev rule", "reinstall"),
    ("masked-rule", "udev rule", "udevadm control --reload"),
    ("no-lvm-filter", "LVM filter", "jdss.lvmfilter add"),
    ("no-agent", "agent", "jdss-agent"),
    ("no-plugin", "versions", "install"),
])
def test_each_node_check_fails_when_its_part_is_missing(
        node, tmp_path, provoke, check, words):
    if provoke == "no-iscsiadm":
        (node.bin / "iscsiadm").unlink()
    elif provoke == "no-initiator":
        (node.root / "etc/iscsi/initiatorname.iscsi").write_text("")
    elif provoke == "no-multipathd":
        script(node.bin / "multipathd", "exit 1\n")
    elif provoke == "no-dropin":
        (node.root / hostcheck.DROPIN.lstrip("/")).unlink()
    elif provoke == "no-rule":
        (node.root / "lib/udev/rules.d/56-jdss.rules").unlink()
    elif provoke == "masked-rule":
        (node.root / "etc/udev/rules.d").mkdir(parents=True)
        os.symlink("/dev/null", node.root / "etc/udev/rules.d/56-jdss.rules")
    elif provoke == "no-lvm-filter":
        if not os.path.exists("/etc/lvm/lvm.conf"):
            pytest.skip("needs lvm2")
        lvmfilter.uninstall(str(node.root / "etc" / "lvm"))
    elif provoke == "no-agent":
        node.stop_agent()
    elif provoke == "no-plugin":
        (node.root / hostcheck.PLUGIN.lstrip("/")).unlink()
    # the fake backend: the node's checks alone can fail
    config = write(tmp_path, multipath=True)
    code, rows, _ = doctor_run(node, config)
    failed = {k for k, v in rows.items() if v["status"] == "FAIL"}
    assert code == 1 and failed == {check}, rows
    assert words in rows[check]["fix"]


def test_devices_udev_has_not_linked_are_named(node, tmp_path):
    block = node.root / "sys" / "block"
    for name, vendor in (("sdb", "SCST_BIO"), ("sdc", "SCST_BIO"),
                         ("sda", "ATA")):
        (block / name / "device").mkdir(parents=True)
        (block / name / "device" / "vendor").write_text(f"{vendor:<8}\n")
    (node.root / "dev" / "jdss").mkdir(parents=True)
    os.symlink("../sdb", node.root / "dev" / "jdss" / "sdb")
    code, rows, _ = doctor_run(node, write(tmp_path))
    row = rows["udev rule"]
    assert row["status"] == "FAIL" and row["detail"].endswith("to sdc")
    assert "/sys/class/block/sdc" in row["fix"]


def test_a_broken_storage_config_fails_alone(node, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("backend: fake\nrest_api_port: 70000\n")
    code, rows, _ = doctor_run(node, config)
    assert code == 1 and rows["broken.yaml: config"]["status"] == "FAIL"
    assert "out of range" in rows["broken.yaml: config"]["detail"]


def test_doctor_checks_each_storage_of_storage_cfg(node, appliance, tmp_path):
    pve = tmp_path / "pve"
    pve.mkdir()
    (pve / "jdss-Pool-0.yaml").write_text(yaml.safe_dump(appliance))
    (pve / "storage.cfg").write_text(
        "dir: local\n\tpath /var/lib/vz\n\n"
        "joviandss: jdss-Pool-0\n\tpool_name Pool-0\n\tmultipath 1\n\n"
        "joviandss: jdss-Pool-1\n\tpool_name Pool-1\n"
        f"\tconfig {pve}/missing.yaml\n")
    proc = subprocess.run(
        [jdss_command(), "doctor", "-f", "json"], capture_output=True,
        text=True, timeout=180,
        env=dict(os.environ, **node.env(), JDSS_PVE_ROOT=str(pve)))
    rows = {r["check"]: r for r in json.loads(proc.stdout)}
    assert rows["storages"]["detail"] == "jdss-Pool-0, jdss-Pool-1"
    assert rows["jdss-Pool-0: pool"]["status"] == "ok"
    assert "missing.yaml" in rows["jdss-Pool-1: config"]["detail"]
    assert rows["multipathd"]["status"] == "ok"      # Pool-0 has multipath
    assert proc.returncode == 1


def test_no_storage_at_all_fails(node, tmp_path):
    proc = subprocess.run(
        [jdss_command(), "doctor", "-f", "value", "-c", "status", "-c",
         "check"], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, **node.env(), JDSS_PVE_ROOT=str(tmp_path)))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "storages FAIL"


# checks that need a state no emulator or tgtd can be put in ---------------
def test_clock_skew_fails_beyond_thirty_seconds():
    date = "Tue, 01 Dec 2026 10:00:00 GMT"
    at = 1796119200.0                      # that moment
    assert doctor.clock("s", date, now=at + 5)["status"] == "ok"
    late = doctor.clock("s", date, now=at - 600)
    assert late["status"] == "FAIL"
    assert late["detail"] == "this node is 600 s behind the appliance"
    assert "NTP" in late["fix"]
    assert doctor.clock("s", None)["status"] == "skip"


def test_an_unhealthy_pool_fails(tmp_path, monkeypatch):
    from jdss import config as jconfig, drivers
    from jdss.storage import Storage
    cfg = jconfig.load(str(write(tmp_path)))
    storage = Storage(cfg, drivers.load_backend(cfg))
    monkeypatch.setattr(storage, "pool", lambda: {"health": "DEGRADED"})
    result = doctor._pool("s", storage)
    assert result["status"] == "FAIL" and "DEGRADED" in result["detail"]


@pytest.fixture
def pvedaemon():
    """A process called pvedaemon, as ps and /proc show it."""
    proc = subprocess.Popen([sys.executable, "-c", (
        "import time\nopen('/proc/self/comm', 'w').write('pvedaemon')\n"
        "print('ready', flush=True)\ntime.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_pvedaemon_started_before_the_plugin_is_reported(tmp_path,
                                                         pvedaemon):
    module = tmp_path / hostcheck.PLUGIN.lstrip("/")
    module.parent.mkdir(parents=True)
    module.write_text("1;\n")
    host = hostcheck.Host(root=str(tmp_path))
    # the module is newer than the daemon: a reload is due
    assert hostcheck.pvedaemon_plugin(host)["status"] == "FAIL"
    assert "reload pvedaemon" in hostcheck.pvedaemon_plugin(host)["fix"]
    # the daemon started after the module was written
    old = time.time() - 3600
    os.utime(module, (old, old))
    assert hostcheck.pvedaemon_plugin(host)["status"] == "ok"


def test_storages_come_from_storage_cfg(tmp_path, monkeypatch):
    """Every jdss section of storage.cfg, as jdss --storage reads it; a
    broken one is reported, the others checked."""
    from jdss import errors
    good = write(tmp_path)
    root = tmp_path / "pve"
    root.mkdir()
    (root / "storage.cfg").write_text(
        f"joviandss: jdss-b\n\tpool_name Pool-0\n\tblock_size 3K\n\n"
        f"joviandss: jdss-a\n\tpool_name Pool-0\n\tconfig {good}\n\n"
        "dir: local\n\tpath /var/lib/vz\n")
    monkeypatch.setenv("JDSS_PVE_ROOT", str(root))
    found = doctor.storages()
    assert [s for s, _ in found] == ["jdss-a", "jdss-b"]
    assert found[0][1].path == str(good)
    assert isinstance(found[1][1], errors.ConfigError)
    rows = {r["check"]: r for r in doctor.run(found, hostcheck.Host(
        root=str(tmp_path), search_path=""))}
    assert rows["jdss-a: pool"]["status"] == "ok"
    assert "block_size" in rows["jdss-b: config"]["detail"]
