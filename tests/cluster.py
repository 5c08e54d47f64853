"""A Proxmox cluster on one machine, for cluster tests.

Each node is a process in mount and UTS namespaces of its own: its own
hostname (the node name Proxmox and jdss use), its own ``/run`` (node-local
locks and state), its own iSCSI initiator name (a file bind-mounted over
``/etc/iscsi/initiatorname.iscsi``), running the real ``PVE::Storage``
with the plugin (``tests/perl/node-driver.pl``). The nodes share one
``/etc/pve`` (``$JDSS_PVE_ROOT``), whose ``priv/lock`` directories
serialise them as pmxcfs's do, and one appliance. Guests are long-lived
``qemu-io`` processes logged in with their node's initiator name, as QEMU
is when Proxmox starts a VM with an ``iscsi`` blockdev.
"""

import json
import os
import select
import shutil
import subprocess

from tests.conftest import ROOT, jdss_command

DRIVER = os.path.join(ROOT, "tests", "perl", "node-driver.pl")
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"


def missing():
    """Why cluster tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts)"
    for tool in ("unshare", "qemu-io", "tgtd", "perl"):
        if shutil.which(tool) is None and \
                not os.path.exists(f"/usr/sbin/{tool}"):
            return f"needs {tool}"
    if not os.path.exists(INITIATOR_FILE):
        return f"needs {INITIATOR_FILE} (open-iscsi)"
    return None


class NodeError(Exception):
    """A Proxmox call on a node failed; the message is the plugin's."""


class Node:
    """One node: ``call(op, **args)`` runs a PVE::Storage operation there."""

    def __init__(self, name, directory, pve_root, env=None):
        self.name = name
        self.initiator = f"iqn.1993-08.org.debian:01:{name}"
        home = os.path.join(directory, name)
        os.makedirs(home, exist_ok=True)
        initiator_file = os.path.join(home, "initiatorname.iscsi")
        with open(initiator_file, "w") as handle:
            handle.write(f"InitiatorName={self.initiator}\n")
        script = ("set -e; mount -t tmpfs tmpfs /run; mkdir -p /run/lock; "
                  f"hostname {name}; "
                  f"mount --bind {initiator_file} {INITIATOR_FILE}; "
                  f"exec perl {DRIVER}")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--propagation", "private",
             "sh", "-c", script], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=home,
            env=dict(os.environ, JDSS_PVE_ROOT=str(pve_root),
                     JDSS_BIN=jdss_command(), **(env or {})))
        hello = self._read(60)
        assert hello.get("ready") and hello["node"] == name, hello

    def _read(self, timeout):
        """One answer line (one request at a time: no read-ahead)."""
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise NodeError(f"node {self.name} did not answer in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise NodeError(f"node {self.name} ended")
        return json.loads(line)

    def call(self, op, timeout=180, **args):
        self.proc.stdin.write(json.dumps(dict(args, op=op)) + "\n")
        self.proc.stdin.flush()
        reply = self._read(timeout)
        if not reply["ok"]:
            raise NodeError(reply["error"])
        return reply["result"]

    def kill(self):
        """The node dies: no deactivation, nothing cleaned up."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdin.close()
        self.proc.stdout.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
            self.proc.stdout.close()


class Guest:
    """A running guest's disk: a qemu-io session with a node's initiator
    name, opened from the blockdev options Proxmox gives QEMU."""

    def __init__(self, blockdev, read_only=False):
        options = ",".join(f"file.{k}={v}" for k, v in sorted(
            blockdev.items()) if k != "driver")
        self.proc = subprocess.Popen(
            ["qemu-io"] + (["-r"] if read_only else []) + ["--image-opts",
             f"driver=raw,file.driver={blockdev['driver']},{options}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self._until_prompt("start")
        self.run("length")                 # logged in once this answers

    PROMPT = b"qemu-io> "

    def _until_prompt(self, command, timeout=60):
        fd, out = self.proc.stdout.fileno(), b""
        while not out.endswith(self.PROMPT):
            if not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError(f"qemu-io: no answer to {command}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("qemu-io ended: " + out.decode())
            out += chunk
        return out[:-len(self.PROMPT)].decode()

    def run(self, command, timeout=60):
        """One qemu-io command (one at a time: qemu-io reads a line, runs
        it, prompts again); its output."""
        self.proc.stdin.write(f"{command}\n")
        self.proc.stdin.flush()
        return self._until_prompt(command, timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.proc.stdout.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stdin.close()
