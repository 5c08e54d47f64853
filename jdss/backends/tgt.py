"""Serving the fake pool's exports as real iSCSI targets through tgtd.

With ``fake_tgt_portal: ADDR:PORT`` the fake backend keeps every volume's
data in a sparse image file and mirrors its targets, LUNs and CHAP users
into a tgtd listening there (started if none is), so initiators (QEMU,
libiscsi, open-iscsi) read and write real blocks. Snapshots and clones are
copies of the images, so a snapshot keeps the bytes it was taken with.

tgt reserves LUN 0 for its controller, so exports start at LUN 1. CHAP
accounts are global in tgt: one password per user name at a time. The
tgtd of port P is controlled as ``tgtadm -C (P mod 32768)``.
"""

import contextlib
import logging
import os
import re
import subprocess
import time

from jdss.errors import BackendError

LOG = logging.getLogger(__name__)
_TARGET = re.compile(r"^Target (\d+): (\S+)$")
_LUN = re.compile(r"^\s+LUN: (\d+)$")
_BACKING = re.compile(r"^\s+Backing store path: (.+)$")
_ACCOUNT = re.compile(r"^\s+(\S+)$")


class TgtMirror:
    """The tgtd of one portal and the image files of one pool."""

    def __init__(self, portal, state_dir, pool):
        self.portal = portal
        # tgtd's control index (its socket name) runs from 0 to 32767
        self.control = str(int(portal.rpartition(":")[2]) % 32768)
        self.images = os.path.join(state_dir, f"{pool}.images")

    # tgtd -----------------------------------------------------------------
    def _tgtadm(self, *args, check=True):
        command = ["tgtadm", "--lld", "iscsi", "-C", self.control] + \
            [str(a) for a in args]
        proc = subprocess.run(command, capture_output=True, text=True,
                              timeout=30)
        if check and proc.returncode:
            raise BackendError(f"tgtadm {' '.join(map(str, args[:4]))}: "
                               f"{proc.stderr.strip() or proc.returncode}")
        return proc

    def ensure_daemon(self):
        """Start tgtd on the portal unless one answers already."""
        if self._tgtadm("--op", "show", "--mode", "system",
                        check=False).returncode == 0:
            return
        os.makedirs(self.images, mode=0o700, exist_ok=True)
        with open(os.path.join(self.images, "tgtd.log"), "ab") as log:
            subprocess.Popen(["tgtd", "-f", "--iscsi",
                              f"portal={self.portal}", "-C", self.control],
                             stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, start_new_session=True)
        for _ in range(100):
            if self._tgtadm("--op", "show", "--mode", "system",
                            check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise BackendError(f"tgtd did not start on {self.portal}")

    def stop_daemon(self):
        """Remove every target and stop tgtd (it ignores SIGTERM)."""
        for tid, _luns, _users in self._targets().values():
            self._tgtadm("--op", "delete", "--mode", "target", "--tid", tid,
                         "--force", check=False)
        self._tgtadm("--op", "delete", "--mode", "system", check=False)

    def _targets(self):
        """``{iqn: (tid, {lun: backing path}, {bound CHAP users})}``."""
        targets, current, lun, section = {}, None, None, None
        output = self._tgtadm("--op", "show", "--mode", "target").stdout
        for line in output.splitlines():
            match = _TARGET.match(line)
            if match:
                current = (int(match.group(1)), {}, set())
                targets[match.group(2)] = current
                section = None
                continue
            if current is None:
                continue
            if line.startswith("    ") and not line.startswith("     "):
                section = line.strip()
                continue
            match = _LUN.match(line)
            if match:
                lun = int(match.group(1))
                continue
            match = _BACKING.match(line)
            if match and lun is not None:
                current[1][lun] = match.group(1).strip()
            elif section == "Account information:" and line.strip():
                current[2].add(line.split()[0])
        return targets

    def sessions(self, iqn):
        """Initiator names connected to target ``iqn`` (its I_T nexuses)."""
        names, current = [], None
        output = self._tgtadm("--op", "show", "--mode", "target",
                              check=False).stdout
        for line in output.splitlines():
            match = _TARGET.match(line)
            if match:
                current = match.group(2)
            elif current == iqn and line.strip().startswith("Initiator:"):
                names.append(line.split(":", 1)[1].strip().split()[0])
        return names

    def _accounts(self):
        output = self._tgtadm("--op", "show", "--mode", "account").stdout
        return {m.group(1) for m in map(_ACCOUNT.match,
                                        output.splitlines()[1:]) if m}

    def sync(self, targets, readonly=()):
        """Make tgtd export exactly the model's ``targets``.

        LUNs of the volumes in ``readonly`` are write protected.
        """
        self.ensure_daemon()
        present = self._targets()
        for iqn, (tid, _luns, _users) in present.items():
            if iqn not in targets:
                self._tgtadm("--op", "delete", "--mode", "target", "--tid",
                             tid, "--force")
        next_tid = max([t[0] for t in present.values()] + [0]) + 1
        accounts = self._accounts()
        bound_elsewhere = {user for iqn, (_, _, users) in present.items()
                           for user in users if iqn in targets}
        for iqn, target in targets.items():
            if iqn in present:
                tid, luns, bound = present[iqn]
            else:
                tid, luns, bound = next_tid, {}, set()
                next_tid += 1
                self._tgtadm("--op", "new", "--mode", "target", "--tid", tid,
                             "-T", iqn)
                self._tgtadm("--op", "bind", "--mode", "target", "--tid",
                             tid, "-I", "ALL")
            for user, password in target["users"].items():
                if user in bound:
                    continue
                if user in accounts:
                    if user in bound_elsewhere:
                        raise BackendError(
                            f"tgt holds one password per CHAP user and "
                            f"{user!r} is in use by another target")
                    self._tgtadm("--op", "delete", "--mode", "account",
                                 "--user", user)
                self._tgtadm("--op", "new", "--mode", "account", "--user",
                             user, "--password", password)
                self._tgtadm("--op", "bind", "--mode", "account", "--tid",
                             tid, "--user", user)
                accounts.add(user)
                bound_elsewhere.add(user)
            for volume, lun in target["luns"].items():
                if lun not in luns:
                    self._tgtadm("--op", "new", "--mode", "logicalunit",
                                 "--tid", tid, "--lun", lun, "-b",
                                 self.image(volume))
                    if volume in readonly:
                        self._tgtadm("--op", "update", "--mode",
                                     "logicalunit", "--tid", tid, "--lun",
                                     lun, "--params", "readonly=1")
        in_use = {u for t in targets.values() for u in t["users"]}
        for user in accounts - in_use:
            self._tgtadm("--op", "delete", "--mode", "account", "--user",
                         user, check=False)

    # images ---------------------------------------------------------------
    def image(self, volume, snapshot=None):
        name = volume if snapshot is None else f"{volume}@{snapshot}"
        return os.path.join(self.images, name + ".img")

    def create(self, volume, size, source=None):
        os.makedirs(self.images, mode=0o700, exist_ok=True)
        if source is None:
            with open(self.image(volume), "wb") as handle:
                handle.truncate(size)
        else:
            _copy(source, self.image(volume))
            os.truncate(self.image(volume), size)

    def resize(self, volume, size):
        os.truncate(self.image(volume), size)

    def snapshot(self, volume, snap):
        _copy(self.image(volume), self.image(volume, snap))

    def clone(self, source, snap, volume, size):
        self.create(volume, size, source=self.image(source, snap))

    def rollback(self, volume, snap):
        _copy(self.image(volume, snap), self.image(volume))

    def remove(self, volume, snap=None):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.image(volume, snap))

    def rename(self, volume, new, snaps):
        for snap in [None] + list(snaps):
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.image(volume, snap), self.image(new, snap))


def _copy(source, destination):
    """Copy keeping holes; the destination keeps its inode (tgtd has it)."""
    subprocess.run(["cp", "--sparse=always", source, destination],
                   check=True, capture_output=True, timeout=600)
