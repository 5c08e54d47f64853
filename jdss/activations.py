"""Which nodes have activated a volume, kept where the whole cluster sees it.

Proxmox activates a volume on a node before a guest starts there and
deactivates it after the guest stops or leaves. During a live migration or
an HA takeover two nodes hold it at once, and a node's QEMU may not have
logged in yet when the other node deactivates. So an export is removed
only when no other node holds an activation: each activation is recorded,
per volume (or exposed snapshot), in pmxcfs (``priv/jdss/active/`` under
``/etc/pve``), or on a node without Proxmox in ``/run/jdss/active``. A
record is read and changed only under the volume's lock.

A record of another node counts while that node is a cluster member and
either has a session on the export (its initiator name is seen by the
appliance) or activated less than ``activation_grace`` seconds ago (its
guest is still starting). So a node that died, or left the cluster, keeps
no export alive for long: the next deactivation removes it.
"""

import contextlib
import json
import os
import socket
import tempfile
import time

from jdss import locks
from jdss.pvecfg import pve_root


def node_name():
    """This node's name, as Proxmox has it (the short host name)."""
    return socket.gethostname().split(".", 1)[0]


class Activations:
    """The activation records of one pool."""

    def __init__(self, config):
        self.config = config
        root = pve_root()
        if os.path.isdir(os.path.join(root, "priv")):
            self.directory = os.path.join(root, "priv", "jdss", "active",
                                          config.pool)
            self.nodes_dir = os.path.join(root, "nodes")
        else:
            self.directory = os.path.join(locks.lock_dir(), "active",
                                          config.pool)
            self.nodes_dir = None

    def _path(self, key):
        return os.path.join(self.directory, locks._key("", key) + ".json")

    def read(self, key):
        """``{node: {"since": epoch, "initiator": name}}`` of ``key``."""
        try:
            with open(self._path(key), encoding="utf-8") as handle:
                return json.load(handle).get("nodes", {})
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}          # unreadable: as if empty, rewritten next

    def _write(self, key, nodes):
        path = self._path(key)
        if not nodes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".active-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"volume": key, "nodes": nodes}, handle)
            os.replace(tmp, path)          # pmxcfs: rename, no links
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def add(self, key, initiator, node=None):
        """Record that ``node`` (this one) activated ``key``."""
        nodes = self.read(key)
        nodes[node or node_name()] = {"since": time.time(),
                                      "initiator": initiator}
        self._write(key, nodes)

    def remove(self, key, node=None):
        """Forget ``node``'s (this one's) activation of ``key``."""
        nodes = self.read(key)
        if nodes.pop(node or node_name(), None) is not None:
            self._write(key, nodes)

    def _members(self):
        """``{node: online}`` of the cluster, or None without Proxmox.

        pmxcfs keeps the membership in ``.members``; without it (a single
        node), the node directories say who belongs, all taken as online.
        """
        if self.nodes_dir is None:
            return None
        try:
            with open(os.path.join(os.path.dirname(self.nodes_dir),
                                   ".members"), encoding="utf-8") as handle:
                nodelist = json.load(handle).get("nodelist") or {}
            return {node: bool(info.get("online"))
                    for node, info in nodelist.items()}
        except (OSError, ValueError, AttributeError):
            pass
        with contextlib.suppress(OSError):
            return {node: True for node in os.listdir(self.nodes_dir)}
        return {}

    def holders(self, key, sessions, node=None):
        """Other nodes whose activation of ``key`` still counts, given the
        initiator names with a session on its export now: a node of the
        cluster, online, whose initiator has a session or whose activation
        is younger than ``activation_grace`` (its guest is starting)."""
        own = node or node_name()
        members = self._members()
        grace = self.config.activation_grace
        now = time.time()
        held = []
        for other, record in sorted(self.read(key).items()):
            if other == own:
                continue
            if members is not None and not members.get(other):
                continue                 # gone from the cluster, or down
            if record.get("initiator") in sessions or \
                    now - float(record.get("since", 0)) < grace:
                held.append(other)
        return held

    def initiators(self, key, node=None):
        """Initiator names of the other nodes with a record of ``key``:
        their sessions are theirs to explain (:meth:`holders`)."""
        own = node or node_name()
        return {record.get("initiator")
                for other, record in self.read(key).items()
                if other != own and record.get("initiator")}
