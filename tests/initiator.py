"""A stand-in for a Proxmox node's kernel iSCSI stack, for os-brick.

These machines cannot log in with the kernel initiator or build
device-mapper maps, so ``Node`` simulates one: iSCSI node records and
sessions, the SCSI disks a login brings, and multipathd's maps. os-brick
drives it through the same commands it runs on a real node (``iscsiadm``,
``multipath``, ``multipathd``, ``blockdev``, ``tee`` into sysfs), answered
with the real tools' output formats and exit codes; the few places where
os-brick reads sysfs directly read this node's state through
``StandInSCSI``. Failures: a portal that times out at login, a wrong CHAP
secret, a session left over from a crash, multipathd down, a blacklist
that hides every WWID.
"""

import hashlib

from os_brick.initiator import linuxscsi
from oslo_concurrency import processutils


class Node:
    def __init__(self, san, down=(), multipathd=True, blacklist_all=False):
        self.san = san                  # iqn -> {"luns": [...], "chap": ()}
        self.down = set(down)           # portals whose logins time out
        self.multipathd = multipathd
        self.blacklist_all = blacklist_all
        self.nodes = {}                 # (portal, iqn) -> settings
        self.sessions = {}              # sid -> (portal, iqn)
        self.disks = {}                 # "sdX" -> (sid, lun)
        self.maps = {}                  # "dm-N" -> wwid
        self.wwids = set()              # multipath's wwids file
        self.calls = []
        self._next = {"sid": 1, "disk": 0, "dm": 0}

    # helpers --------------------------------------------------------------
    @staticmethod
    def wwid(iqn, lun):
        return "36" + hashlib.sha1(f"{iqn}/{lun}".encode()).hexdigest()[:30]

    def disk_wwid(self, disk):
        sid, lun = self.disks[disk]
        return self.wwid(self.sessions[sid][1], lun)

    def _new(self, kind):
        self._next[kind] += 1
        return self._next[kind] - 1

    def _bracket(self, portal, iqn, sid=None):
        host, port = portal.rsplit(":", 1)
        head = f"sid: {sid}, " if sid is not None else "iface: default, "
        return f"[{head}target: {iqn}, portal: {host},{port}]"

    def leave_stale_session(self, portal, iqn, luns):
        """What a node that crashed while attached still has."""
        self.nodes[(portal, iqn)] = {"node.startup": "automatic"}
        sid = self._new("sid")
        self.sessions[sid] = (portal, iqn)
        for lun in luns:
            self._add_disk(sid, lun)
        return sid

    def _add_disk(self, sid, lun):
        for disk, where in self.disks.items():
            if where == (sid, lun):
                return disk
        disk = "sd" + chr(ord("a") + self._new("disk"))
        self.disks[disk] = (sid, lun)
        self._multipath_consider(disk)
        return disk

    def _multipath_consider(self, disk):
        wwid = self.disk_wwid(disk)
        if not self.multipathd or self.blacklist_all or wwid not in \
                self.wwids:
            return
        if wwid not in self.maps.values():
            self.maps[f"dm-{self._new('dm')}"] = wwid

    def map_of(self, disk):
        wwid = self.disk_wwid(disk)
        for dm, mapped in self.maps.items():
            if mapped == wwid:
                return dm
        return None

    # the executor -----------------------------------------------------------
    def execute(self, *command, **kwargs):
        self.calls.append(command)
        code, out, err = self._run(list(command), kwargs)
        check = kwargs.get("check_exit_code", 0)
        if check is True:
            check = [0]
        elif isinstance(check, int) and check is not False:
            check = [check]
        if check is not False and code not in check:
            raise processutils.ProcessExecutionError(
                exit_code=code, stdout=out, stderr=err,
                cmd=" ".join(command))
        return out, err

    def _run(self, command, kwargs):
        tool, args = command[0], command[1:]
        if tool == "iscsiadm":
            return self._iscsiadm(args)
        if tool == "multipath":
            return self._multipath(args)
        if tool == "multipathd":
            return self._multipathd(args)
        if tool == "blockdev":
            return 0, "", ""
        if tool == "tee" and args[-1].endswith("/device/delete"):
            disk = args[-1].split("/")[3]
            self.disks.pop(disk, None)
            for dm, wwid in list(self.maps.items()):
                if not any(self.disk_wwid(d) == wwid for d in self.disks):
                    del self.maps[dm]
            return 0, kwargs.get("process_input", ""), ""
        if tool == "cat" and args == ["/etc/iscsi/initiatorname.iscsi"]:
            return 0, "InitiatorName=iqn.1993-08.org.debian:01:node1\n", ""
        return 127, "", f"{tool}: command not found\n"

    def _iscsiadm(self, args):
        if args == ["-m", "session"]:
            if not self.sessions:
                return 21, "", "iscsiadm: No active sessions.\n"
            return 0, "".join(
                f"tcp: [{sid}] {portal},1 {iqn} (non-flash)\n"
                for sid, (portal, iqn) in sorted(self.sessions.items())), ""
        if args == ["-m", "node"]:
            if not self.nodes:
                return 21, "", "iscsiadm: No records found\n"
            return 0, "".join(f"{portal},1 {iqn}\n"
                              for portal, iqn in self.nodes), ""
        if args[:1] != ["-m"] or args[1] != "node" or "-T" not in args:
            return 7, "", "iscsiadm: invalid parameter\n"
        iqn = args[args.index("-T") + 1]
        portal = args[args.index("-p") + 1]
        key = (portal, iqn)
        rest = args[6:]
        if not rest:
            if key not in self.nodes:
                return 21, "", "iscsiadm: No records found\n"
            return 0, f"node.name = {iqn}\n", ""
        if "--op" in rest:
            op = rest[rest.index("--op") + 1]
            if op == "new":
                self.nodes[key] = {}
                host, port = portal.rsplit(":", 1)
                return 0, (f"New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if="
                           f"default] {host},{port},-1 {iqn}] added\n"), ""
            if key not in self.nodes:
                return 21, "", "iscsiadm: No records found\n"
            if op == "update":
                name = rest[rest.index("-n") + 1]
                self.nodes[key][name] = rest[rest.index("-v") + 1]
                return 0, "", ""
            if op == "delete":
                del self.nodes[key]
                return 0, "", ""
        if "--login" in rest:
            return self._login(portal, iqn)
        if "--logout" in rest:
            return self._logout(portal, iqn)
        return 7, "", "iscsiadm: invalid parameter\n"

    def _login(self, portal, iqn):
        if (portal, iqn) not in self.nodes:
            return 21, "", "iscsiadm: No records found\n"
        if any(s == (portal, iqn) for s in self.sessions.values()):
            return 15, "", ("iscsiadm: default: 1 session requested, but 1 "
                            "already present.\niscsiadm: Could not log into "
                            "all portals\n")
        trying = f"Logging in to {self._bracket(portal, iqn)}\n"
        target = self.san(iqn)
        if portal in self.down or target is None:
            reason = "8 - connection timed out" if portal in self.down \
                else "19 - encountered non-retryable iSCSI login failure"
            return int(reason.split()[0]), trying, (
                f"iscsiadm: Could not login to {self._bracket(portal, iqn)}."
                f"\niscsiadm: initiator reported error ({reason})\n"
                "iscsiadm: Could not log into all portals\n")
        settings = self.nodes[(portal, iqn)]
        if target.get("chap") and (
                settings.get("node.session.auth.username"),
                settings.get("node.session.auth.password")) != \
                tuple(target["chap"]):
            return 24, trying, (
                f"iscsiadm: Could not login to {self._bracket(portal, iqn)}."
                "\niscsiadm: initiator reported error (24 - iSCSI login "
                "failed due to authorization failure)\niscsiadm: Could not "
                "log into all portals\n")
        sid = self._new("sid")
        self.sessions[sid] = (portal, iqn)
        return 0, trying + (f"Login to {self._bracket(portal, iqn)} "
                            "successful.\n"), ""

    def _logout(self, portal, iqn):
        for sid, session in list(self.sessions.items()):
            if session == (portal, iqn):
                del self.sessions[sid]
                for disk, (owner, _) in list(self.disks.items()):
                    if owner == sid:
                        del self.disks[disk]
                return 0, (f"Logging out of session "
                           f"{self._bracket(portal, iqn, sid)}\nLogout of "
                           f"{self._bracket(portal, iqn, sid)} successful.\n"
                           ), ""
        return 21, "", "iscsiadm: No matching sessions found\n"

    def _multipath(self, args):
        if args[:1] == ["-a"]:
            self.wwids.add(args[1])
            for disk in list(self.disks):
                self._multipath_consider(disk)
            return 0, f"wwid '{args[1]}' added\n", ""
        if args[:1] == ["-C"]:
            return (0, "", "") if args[1] in self.maps else \
                (1, "", f"{args[1]}: no map\n")
        if args[:1] == ["-f"]:
            for dm, wwid in list(self.maps.items()):
                if args[1] in (dm, wwid):
                    del self.maps[dm]
                    return 0, "", ""
            return 1, "", f"{args[1]}: map in use or not found\n"
        return 1, "", "multipath: unsupported in stand-in\n"

    def _multipathd(self, args):
        if not self.multipathd:
            return 1, "error receiving packet", ""
        if args == ["show", "status"]:
            return 0, "path checker states:\nup 1\n", ""
        if args[:2] == ["add", "path"]:
            disk = args[2].rsplit("/", 1)[-1]
            if disk in self.disks:
                self._multipath_consider(disk)
                return 0, "ok\n", ""
            return 1, "fail\n", ""
        if args[:2] == ["del", "map"]:
            for dm, wwid in list(self.maps.items()):
                if wwid == args[2]:
                    del self.maps[dm]
            return 0, "ok\n", ""
        if args[:2] == ["del", "path"]:
            return 0, "ok\n", ""
        return 1, "", "multipathd: unsupported in stand-in\n"

    # what os-brick reads from sysfs ---------------------------------------
    def glob(self, pattern):
        """Paths of ``/sys/class/scsi_host/host*/device/session<N>/...``."""
        if "/device/session" not in pattern:
            return []
        sid = int(pattern.split("/device/session")[1].split("/")[0])
        return [f"/sys/class/scsi_host/host{sid}/device/session{sid}/"
                f"target{sid}:0:0/{sid}:0:0:{lun}/block/{disk}"
                for disk, (owner, lun) in sorted(self.disks.items())
                if owner == sid]


class StandInSCSI(linuxscsi.LinuxSCSI):
    """os-brick's LinuxSCSI with its sysfs reads answered by a Node."""

    def __init__(self, node, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.node = node

    def get_hctl(self, session, lun):
        return (str(session), "0", "0", str(lun)) \
            if int(session) in self.node.sessions else None

    def scan_iscsi(self, host, channel, target, lun):
        sid = int(host)
        portal, iqn = self.node.sessions[sid]
        target_info = self.node.san(iqn) or {}
        if int(lun) in target_info.get("luns", ()):
            self.node._add_disk(sid, int(lun))

    def device_name_by_hctl(self, session, hctl):
        for disk, where in self.node.disks.items():
            if where == (int(session), int(hctl[3])):
                return disk
        return None

    def get_sysfs_wwn(self, device_names, mpath=None):
        for disk in device_names:
            if disk in self.node.disks:
                return self.node.disk_wwid(disk)
        return ""

    def get_sysfs_wwid(self, device_names):
        return self.get_sysfs_wwn(device_names)

    def find_sysfs_multipath_dm(self, device_names):
        for disk in device_names:
            if disk in self.node.disks and self.node.map_of(disk):
                return self.node.map_of(disk)
        return None

    def get_dm_name(self, dm):
        return self.node.maps.get(dm, "")

    def remove_scsi_device(self, device, force=False, exc=None, flush=True):
        """As os-brick does, where the node has the device's sysfs entry."""
        name = device.replace("/dev/", "")
        if name in self.node.disks:
            if flush:
                self.flush_device_io(device)
            self.echo_scsi_command(f"/sys/block/{name}/device/delete", "1")

    def wait_for_volumes_removal(self, volumes_names):
        left = [v for v in volumes_names if v in self.node.disks]
        if left:
            raise processutils.ProcessExecutionError(
                stderr=f"devices {left} still present")
