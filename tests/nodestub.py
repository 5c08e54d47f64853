"""A stand-in Proxmox node for jdss doctor: a root directory and PATH.

The root ($JDSS_HOST_ROOT) holds the files the package installs and a real
jdss-agent on its socket; PATH holds stand-ins for iscsiadm, multipath and
multipathd (this machine has no iSCSI or device-mapper in its kernel),
which answer the configuration the real ``multipath -t`` printed for the
drop-in.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

from jdss import hostcheck, lvmfilter
from tests import sandbox
from tests.conftest import ROOT

PLUGIN = os.path.join(ROOT, "perl", "PVE", "Storage", "Custom",
                      "OpenEJovianDSSPlugin.pm")
DROPIN = os.path.join(ROOT, "drivers", "multipath", "configs",
                      "multipath.conf")
RULE = os.path.join(ROOT, "host", "udev", "56-jdss.rules")


def script(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)


def make_multipath_config(tmp_path_factory):
    """What multipath -t prints with the drop-in installed (real tool)."""
    if shutil.which("multipath", path="/usr/sbin:/sbin") is None or \
            sandbox.available():
        return None
    out = tmp_path_factory.mktemp("multipath") / "config"
    proc = sandbox.run(
        'install -D -m 0644 "$DROPIN" /etc/multipath/conf.d/jdss.conf\n'
        'multipath -t > "$OUT" 2>/dev/null\n',
        env={"DROPIN": DROPIN, "OUT": str(out)})
    assert proc.returncode == 0, proc.stderr
    return out


class Node:
    """A stand-in node: its root directory, PATH and agent."""

    def __init__(self, tmp_path, multipath_config):
        self.root = tmp_path / "node"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.agent = None
        self.install(PLUGIN, hostcheck.PLUGIN)
        self.install(DROPIN, hostcheck.DROPIN)
        self.install(RULE, "/lib/udev/rules.d/56-jdss.rules")
        initiator = self.root / "etc" / "iscsi" / "initiatorname.iscsi"
        initiator.parent.mkdir(parents=True)
        initiator.write_text("InitiatorName=iqn.1993-08.org.debian:01:node1\n")
        lvm_dir = self.root / "etc" / "lvm"
        if os.path.exists("/etc/lvm/lvm.conf"):
            lvm_dir.mkdir(parents=True)
            shutil.copy("/etc/lvm/lvm.conf", lvm_dir)
            shutil.copy("/etc/lvm/lvmlocal.conf", lvm_dir)
            lvmfilter.install(str(lvm_dir))
        script(self.bin / "iscsiadm", 'echo "iscsiadm version 2.1.8"\n')
        config = multipath_config or "/dev/null"
        script(self.bin / "multipathd", f"""
case "$*" in
  "show daemon") echo "pid 4242 idle" ;;
  "show config") /bin/cat "{config}" ;;
  *) exit 1 ;;
esac
""")
        script(self.bin / "multipath",
               f'[ "$*" = "-t" ] && exec /bin/cat "{config}"\nexit 1\n')
        for tool in ("dpkg-query",):
            if shutil.which(tool):
                os.symlink(shutil.which(tool), self.bin / tool)
        self.start_agent()

    def install(self, source, target):
        path = self.root / target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, path)
        return path

    def start_agent(self):
        sock = self.root / "run" / "jdss" / "agent.sock"
        self.agent = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "jdss-agent"),
             "--socket", str(sock)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for _ in range(100):
            if sock.exists():
                return
            time.sleep(0.05)
        raise RuntimeError("jdss-agent did not start")

    def stop_agent(self):
        if self.agent is not None:
            self.agent.send_signal(signal.SIGTERM)
            self.agent.wait(timeout=10)
            self.agent = None

    def env(self):
        return {"JDSS_HOST_ROOT": str(self.root), "PATH": str(self.bin)}


