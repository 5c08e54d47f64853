"""Serving a model pool's exports as real iSCSI targets through tgtd.

With ``fake_tgt_portal: ADDR:PORT`` (the fake backend) or ``jdss-emulator
--tgt-portal ADDR:PORT``, every volume's data lives in a sparse image file
and the pool's targets, LUNs and CHAP users are mirrored into a tgtd
listening there (started if none is), so initiators (QEMU, libiscsi,
open-iscsi) read and write real blocks and the sessions tgtd sees are the
appliance's sessions. Snapshots and clones are copies of the images, so a
snapshot keeps the bytes it was taken with.

The mirror is a :class:`jdss.backends.store.StateStore` hook: each
committed change is replayed (the model's ``events``) while the pool's
lock is held, so concurrent changes reach tgtd in order. Several pools
may share one tgtd: each mirror touches only the targets it made (listed
beside its images), and a target name another pool serves is refused.

tgt reserves LUN 0 for its controller, so the data LUNs of a mirrored
pool start at 1. CHAP accounts are global in tgt: one password per user
name at a time. The tgtd of port P is controlled as ``tgtadm -C (P mod
32768)``.
"""

import contextlib
import copy
import json
import logging
import os
import re
import subprocess
import time

from jdss.errors import BackendError
from jdss.priority import at_own_level

LOG = logging.getLogger(__name__)
#: tgt's controller holds LUN 0 of every target
RESERVED_LUNS = (0,)
_TARGET = re.compile(r"^Target (\d+): (\S+)$")
_LUN = re.compile(r"^\s+LUN: (\d+)$")
_BACKING = re.compile(r"^\s+Backing store path: (.+)$")
_NEXUS = re.compile(r"^\s+I_T nexus: (\d+)$")
_INITIATOR = re.compile(r"^\s+Initiator: (\S+)")
_CONNECTION = re.compile(r"^\s+Connection: (\d+)$")
_ADDRESS = re.compile(r"^\s+IP Address: (\S+)$")
_ACCOUNT = re.compile(r"^\s+(\S+)$")


class TgtMirror:
    """The tgtd of one portal and the image files of one pool."""

    reserved_luns = RESERVED_LUNS

    def __init__(self, portal, state_dir, pool):
        self.portal = portal
        # tgtd's control index (its socket name) runs from 0 to 32767
        self.control = str(int(portal.rpartition(":")[2]) % 32768)
        self.images = os.path.join(state_dir, f"{pool}.images")
        self.owned_path = os.path.join(self.images, "tgt-owned.json")
        self.started = False          # whether this mirror started tgtd

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
            # at its starter's own level: a pool's lock holder, running
            # ahead for the moment, may start it
            subprocess.Popen(at_own_level(
                ["tgtd", "-f", "--iscsi", f"portal={self.portal}", "-C",
                 self.control]), stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True)
        for _ in range(100):
            if self._tgtadm("--op", "show", "--mode", "system",
                            check=False).returncode == 0:
                self.started = True
                return
            time.sleep(0.05)
        raise BackendError(f"tgtd did not start on {self.portal}")

    def stop_daemon(self):
        """Remove every target and stop tgtd (it ignores SIGTERM)."""
        for target in self._targets(check=False).values():
            self._tgtadm("--op", "delete", "--mode", "target", "--tid",
                         target["tid"], "--force", check=False)
        self._tgtadm("--op", "delete", "--mode", "system", check=False)

    def _targets(self, check=True):
        """What tgtd serves: ``{iqn: {tid, luns: {lun: backing path},
        users: {bound CHAP users}, sessions: [session records]}}``."""
        output = self._tgtadm("--op", "show", "--mode", "target",
                              check=check).stdout
        targets, current, lun, section, session = {}, None, None, None, None
        for line in output.splitlines():
            match = _TARGET.match(line)
            if match:
                current = {"tid": int(match.group(1)), "luns": {},
                           "users": set(), "sessions": []}
                targets[match.group(2)] = current
                name, section, lun, session = match.group(2), None, None, \
                    None
                continue
            if current is None:
                continue
            if line.startswith("    ") and not line.startswith("     "):
                section = line.strip()
                continue
            if section == "I_T nexus information:":
                session = self._session_line(line, name, current, session)
            elif section == "LUN information:":
                match = _LUN.match(line)
                if match:
                    lun = int(match.group(1))
                match = _BACKING.match(line)
                if match and lun is not None:
                    current["luns"][lun] = match.group(1).strip()
            elif section == "Account information:" and line.strip():
                current["users"].add(line.split()[0])
        return targets

    @staticmethod
    def _session_line(line, name, target, session):
        """One line of an I_T nexus section: the appliance's session
        record ``{initiator_name, ip, sid, cid, target_name}``."""
        match = _NEXUS.match(line)
        if match:
            session = {"initiator_name": None, "ip": None,
                       "sid": int(match.group(1)), "cid": None,
                       "target_name": name}
            target["sessions"].append(session)
            return session
        if session is None:
            return None
        for pattern, key in ((_INITIATOR, "initiator_name"),
                             (_CONNECTION, "cid"), (_ADDRESS, "ip")):
            match = pattern.match(line)
            if match:
                value = match.group(1)
                session[key] = int(value) if key == "cid" else value
        return session

    def sessions(self, iqn):
        """Session records of target ``iqn``, as the appliance lists them
        (empty when tgtd does not run or serves no such target)."""
        target = self._targets(check=False).get(iqn)
        return [dict(s) for s in target["sessions"]] if target else []

    def _accounts(self):
        output = self._tgtadm("--op", "show", "--mode", "account").stdout
        return {m.group(1) for m in map(_ACCOUNT.match,
                                        output.splitlines()[1:]) if m}

    # which targets are this pool's ----------------------------------------
    def _owned(self):
        try:
            with open(self.owned_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {"targets": [], "accounts": {}}
        return {"targets": list(data.get("targets", [])),
                "accounts": dict(data.get("accounts", {}))}

    def _save_owned(self, targets, accounts):
        os.makedirs(self.images, mode=0o700, exist_ok=True)
        tmp = self.owned_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"targets": sorted(targets), "accounts": accounts},
                      handle)
        os.replace(tmp, self.owned_path)

    # replaying committed changes --------------------------------------------
    def apply(self, model):
        """Replay a committed change of ``model``: its data events on the
        images, then its targets onto tgtd. Runs under the pool's lock."""
        for event in model.events:
            getattr(self, event[0])(*event[1:])
        readonly = {name for name, volume in model.volumes.items()
                    if volume.get("readonly")}
        self.sync(copy.deepcopy(model.targets), readonly)

    def sync(self, targets, readonly=()):
        """Make tgtd serve exactly this pool's ``targets`` (leaving other
        pools' alone); LUNs of volumes in ``readonly`` are write
        protected."""
        self.ensure_daemon()
        owned = self._owned()
        present = self._targets()
        mine = set(owned["targets"]) & set(present)
        for iqn in mine - set(targets):
            self._tgtadm("--op", "delete", "--mode", "target", "--tid",
                         present[iqn]["tid"], "--force")
        accounts = owned["accounts"]
        for iqn, target in targets.items():
            if iqn in present and iqn not in mine:
                raise BackendError(f"target {iqn} is served on "
                                   f"{self.portal} for another pool")
            served = present.get(iqn) or self._new_target(iqn)
            self._sync_luns(served, target["luns"], readonly)
            self._sync_users(served, target["users"], accounts)
        wanted = {u for t in targets.values() for u in t["users"]}
        for user in set(accounts) - wanted:
            bound = any(user in t["users"]
                        for i, t in self._targets().items()
                        if i not in targets)
            if not bound:
                self._tgtadm("--op", "delete", "--mode", "account",
                             "--user", user, check=False)
            accounts.pop(user)
        self._save_owned(set(targets), accounts)

    def _new_target(self, iqn):
        """Create target ``iqn`` under a free tid (another pool's mirror
        may take the one this one picked: then the next)."""
        for _ in range(50):
            tids = [t["tid"] for t in self._targets().values()]
            tid = max(tids + [0]) + 1
            made = self._tgtadm("--op", "new", "--mode", "target", "--tid",
                                tid, "-T", iqn, check=False)
            if made.returncode == 0:
                self._tgtadm("--op", "bind", "--mode", "target", "--tid",
                             tid, "-I", "ALL")
                return {"tid": tid, "luns": {}, "users": set(),
                        "sessions": []}
            if iqn in self._targets():
                raise BackendError(f"target {iqn} is served on "
                                   f"{self.portal} for another pool")
        raise BackendError(f"tgtadm: no free target id on {self.portal}")

    def _sync_luns(self, served, luns, readonly):
        tid = served["tid"]
        wanted = {lun: self.image(volume) for volume, lun in luns.items()}
        for lun, path in served["luns"].items():
            if lun not in RESERVED_LUNS and wanted.get(lun) != path:
                self._tgtadm("--op", "delete", "--mode", "logicalunit",
                             "--tid", tid, "--lun", lun)
        for volume, lun in luns.items():
            if served["luns"].get(lun) == wanted[lun]:
                continue
            self._tgtadm("--op", "new", "--mode", "logicalunit", "--tid",
                         tid, "--lun", lun, "-b", wanted[lun])
            if volume in readonly:
                self._tgtadm("--op", "update", "--mode", "logicalunit",
                             "--tid", tid, "--lun", lun, "--params",
                             "readonly=1")

    def _sync_users(self, served, users, accounts):
        tid = served["tid"]
        for user in served["users"] - set(users):
            self._tgtadm("--op", "unbind", "--mode", "account", "--tid",
                         tid, "--user", user, check=False)
        for user, password in users.items():
            if user in self._accounts():
                if accounts.get(user) == password:
                    if user not in served["users"]:
                        self._tgtadm("--op", "bind", "--mode", "account",
                                     "--tid", tid, "--user", user)
                    continue
                if any(user in t["users"] and t["tid"] != tid
                       for t in self._targets().values()):
                    raise BackendError(
                        f"tgt holds one password per CHAP user and "
                        f"{user!r} is in use by another target")
                self._tgtadm("--op", "delete", "--mode", "account",
                             "--user", user, check=False)
            self._tgtadm("--op", "new", "--mode", "account", "--user",
                         user, "--password", password)
            self._tgtadm("--op", "bind", "--mode", "account", "--tid", tid,
                         "--user", user)
            accounts[user] = password

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
