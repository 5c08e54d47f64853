"""A model of one JovianDSS pool: the state behind the fake and the emulator.

The model keeps its state in a plain JSON-serialisable dict and answers in
the appliance's own record formats; failures are raised as
:class:`ApplianceError` with the status, class, errno and message the
appliance uses. It enforces ZFS rules: thick volumes reserve their size,
clones depend on their origin snapshot, a rollback destroys newer snapshots
(and their clones), a volume is a LUN of one target at most.
"""

import re
import time
import uuid

from jdss.backends.appliance import (
    CONFLICT_CLASS, ERRNO_BUSY, ERRNO_EXISTS, ERRNO_NOT_FOUND, ERRNO_ZFS,
    NOT_FOUND_CLASS, VALIDATION_CLASS, ZFS_CMD_CLASS, ZFS_OE_CLASS,
    ZFS_RESOURCE_CLASS, ApplianceError, format_snapshot_time)

STATE_VERSION = 1
BLOCK_SIZES = {"4K": 4 << 10, "8K": 8 << 10, "16K": 16 << 10,
               "32K": 32 << 10, "64K": 64 << 10, "128K": 128 << 10,
               "256K": 256 << 10, "512K": 512 << 10, "1M": 1 << 20}
_ZFS_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_CHAP_USER = re.compile(r"^\w([a-zA-Z0-9-_]*\w)?$")
_CHAP_PASSWORD = re.compile(r"^[a-zA-Z0-9\-_!@%()+?.:;]{12,255}$")
_IQN = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[a-z0-9.:_-]*)?|"
                  r"eui\.[0-9A-Fa-f]{16})$")


def new_state(pool, size):
    """State of an empty pool of ``size`` bytes."""
    return {"version": STATE_VERSION,
            "pool": {"name": pool, "size": int(size), "id": pool_id(pool)},
            "volumes": {}, "targets": {}, "nas_volumes": {}, "shares": {}}


def pool_id(pool):
    """A pool's id, the same whenever an empty pool is made again."""
    import hashlib
    return str(int(hashlib.sha256(pool.encode()).hexdigest()[:15], 16))


def _error(status, cls, errno, message):
    return ApplianceError(status, cls, errno, message)


class PoolModel:
    """Operations on the state of one pool; the caller persists ``state``."""

    def __init__(self, state):
        self.state = state
        self.pool = state["pool"]["name"]
        self.volumes = state["volumes"]
        self.targets = state["targets"]
        self.nas_volumes = state["nas_volumes"]
        self.shares = state["shares"]

    # helpers -------------------------------------------------------------
    def _full(self, name):
        return f"{self.pool}/{name}"

    def _missing(self, name):
        return _error(500, ZFS_RESOURCE_CLASS, ERRNO_NOT_FOUND,
                      f"Zfs resource: {self._full(name)} not found in this "
                      "collection.")

    def _volume(self, name):
        try:
            return self.volumes[name]
        except KeyError:
            raise self._missing(name) from None

    def _snapshot(self, volume, snap):
        snapshots = self._volume(volume)["snapshots"]
        if snap not in snapshots:
            raise self._missing(f"{volume}@{snap}")
        return snapshots[snap]

    def _check_name(self, name):
        if not isinstance(name, str) or not _ZFS_NAME.match(name) or \
                len(self._full(name)) > 255:
            raise _error(400, VALIDATION_CLASS, 22,
                         f"Invalid dataset name: {name!r}")

    def _check_new_dataset(self, name):
        self._check_name(name)
        if name in self.volumes or name in self.nas_volumes:
            raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                         f"Resource {self._full(name)} already exists.")

    @staticmethod
    def _size(value, what="size"):
        try:
            size = int(value)
        except (TypeError, ValueError):
            size = 0
        if size <= 0:
            raise _error(400, VALIDATION_CLASS, 22,
                         f"Invalid {what}: {value!r}")
        return size

    def _block_bytes(self, volume):
        return BLOCK_SIZES[volume["volblocksize"]]

    def _clones_index(self):
        index = {}
        for name, volume in self.volumes.items():
            if volume.get("origin"):
                index.setdefault(volume["origin"], []).append(name)
        return index

    def _clones_of(self, volume, snap):
        origin = f"{self._full(volume)}@{snap}"
        return [n for n, v in self.volumes.items() if v.get("origin") == origin]

    @staticmethod
    def _volume_used(volume):
        reserved = 0 if volume["sparse"] else volume["volsize"]
        return max(reserved, volume.get("data", 0))

    def used(self):
        """Bytes allocated in the pool."""
        return (sum(self._volume_used(v) for v in self.volumes.values())
                + sum(max(n.get("reservation", 0), n.get("data", 0))
                      for n in self.nas_volumes.values()))

    def available(self):
        return max(self.state["pool"]["size"] - self.used(), 0)

    def _need_space(self, size):
        available = self.available()
        if size > available:
            raise _error(500, ZFS_OE_CLASS, ERRNO_ZFS,
                         f"New zvol size({size}) exceeds available space on "
                         f"pool {self.pool}({available}).")

    # pool -----------------------------------------------------------------
    def pool_record(self):
        pool = self.state["pool"]
        return {"name": self.pool, "id": pool["id"], "health": "ONLINE",
                "status": 0, "operation": "none", "scan": None,
                "size": str(pool["size"]), "available": str(self.available()),
                "iostats": {"read": "0", "write": "0", "chksum": "0"},
                "vdevs": [{"name": "fake-0", "health": "ONLINE",
                           "disks": [{"name": "fake-disk-0",
                                      "health": "ONLINE"}]}]}

    # volumes --------------------------------------------------------------
    def volume_record(self, name, available=None):
        volume = self._volume(name)
        used = self._volume_used(volume)
        if available is None:
            available = self.available()
        return {"name": name, "full_name": self._full(name),
                "volsize": str(volume["volsize"]),
                "volblocksize": str(BLOCK_SIZES[volume["volblocksize"]]),
                "used": str(used), "referenced": str(volume.get("data", 0)),
                "available": str(available),
                "origin": volume.get("origin"),
                "is_clone": bool(volume.get("origin")),
                "creation": str(volume["creation"]),
                "compression": "lz4",
                "readonly": "on" if volume.get("readonly") else "off",
                "refreservation": "0" if volume["sparse"]
                else str(volume["volsize"]),
                "usedbysnapshots": "0",
                "usedbydataset": str(volume.get("data", 0))}

    def volume_records(self):
        available = self.available()      # once, not once per volume
        return [self.volume_record(name, available) for name in self.volumes]

    def create_volume(self, name, size, sparse=False, blocksize="16K",
                      origin=None, readonly=False):
        self._check_new_dataset(name)
        size = self._size(size)
        blocksize = str(blocksize or "16K").upper()
        if blocksize not in BLOCK_SIZES:
            raise _error(400, VALIDATION_CLASS, 22,
                         f"Invalid volblocksize: {blocksize}")
        if size % BLOCK_SIZES[blocksize]:
            raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                         f"cannot create '{self._full(name)}': 'volsize' "
                         "must be a multiple of volume block size")
        if not sparse:
            self._need_space(size)
        self.volumes[name] = {"volsize": size, "volblocksize": blocksize,
                              "sparse": bool(sparse), "origin": origin,
                              "creation": int(time.time()),
                              "readonly": bool(readonly), "data": 0,
                              "snapshots": {}}

    def resize_volume(self, name, size):
        volume = self._volume(name)
        size = self._size(size)
        if size % self._block_bytes(volume):
            raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                         f"cannot set property for '{self._full(name)}': "
                         "'volsize' must be a multiple of volume block size")
        if not volume["sparse"] and size > volume["volsize"]:
            self._need_space(size - volume["volsize"])
        volume["volsize"] = size

    def rename_volume(self, name, new_name):
        self._volume(name)
        if new_name in self.volumes or new_name in self.nas_volumes:
            raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                         f"cannot rename to '{self._full(new_name)}': "
                         "dataset already exists")
        self._check_name(new_name)
        self._check_not_exported(name, "rename")
        old_prefix = f"{self._full(name)}@"
        for other in self.volumes.values():
            origin = other.get("origin")
            if origin and origin.startswith(old_prefix):
                other["origin"] = (f"{self._full(new_name)}@"
                                   + origin[len(old_prefix):])
        self.volumes[new_name] = self.volumes.pop(name)

    def set_volume_property(self, name, prop, value):
        volume = self._volume(name)
        if prop != "readonly":
            raise _error(400, VALIDATION_CLASS, 22,
                         f"Unsupported property: {prop}")
        volume["readonly"] = str(value).lower() in ("on", "true", "1")

    def _check_not_exported(self, name, action):
        for iqn, target in self.targets.items():
            if name in target["luns"]:
                raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                             f"cannot {action} '{self._full(name)}': "
                             f"dataset is busy (exported by {iqn})")

    def delete_volume(self, name, recursively_children=False):
        volume = self._volume(name)
        index = self._clones_index()
        if volume["snapshots"]:
            with_clones = [s for s in volume["snapshots"]
                           if index.get(f"{self._full(name)}@{s}")]
            if with_clones:
                raise _error(500, ZFS_CMD_CLASS, ERRNO_BUSY,
                             "In order to delete a zvol, you must delete all "
                             "of its clones first.")
            if not recursively_children:
                children = "\n".join(f"{self._full(name)}@{s}"
                                     for s in volume["snapshots"])
                raise _error(500, ZFS_CMD_CLASS, ERRNO_BUSY,
                             f"cannot destroy '{self._full(name)}': volume "
                             "has children\nuse '-r' to destroy the "
                             f"following datasets:\n{children}")
        self._check_not_exported(name, "destroy")
        del self.volumes[name]

    # snapshots ------------------------------------------------------------
    def snapshot_record(self, volume, snap, index=None):
        record = self._snapshot(volume, snap)
        if index is None:
            clones = self._clones_of(volume, snap)
        else:
            clones = index.get(f"{self._full(volume)}@{snap}", [])
        data = self.volumes[volume].get("data", 0)
        return {"name": snap, "creation": format_snapshot_time(
                    record["creation"]),
                "used": "0", "referenced": str(data), "written": "0",
                "clones": ",".join(self._full(c) for c in clones),
                "properties": {
                    "creation": int(record["creation"]),
                    "guid": record.get("guid", ""),
                    "volsize": str(record.get(
                        "volsize", self.volumes[volume]["volsize"]))}}

    def snapshot_records(self, volume):
        self._volume(volume)
        index = self._clones_index()
        return [self.snapshot_record(volume, s, index)
                for s in self.volumes[volume]["snapshots"]]

    def create_snapshot(self, volume, snap):
        snapshots = self._volume(volume)["snapshots"]
        self._check_name(snap)
        if snap in snapshots:
            raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                         f"Resource {self._full(volume)}@{snap} already "
                         "exists.")
        snapshots[snap] = {"creation": time.time(),
                           "guid": str(uuid.uuid4().int >> 64),
                           "volsize": self.volumes[volume]["volsize"]}

    def delete_snapshot(self, volume, snap):
        self._snapshot(volume, snap)
        clones = self._clones_of(volume, snap)
        if clones:
            listed = "\n".join(self._full(c) for c in clones)
            raise _error(500, ZFS_CMD_CLASS, ERRNO_BUSY,
                         f"cannot destroy snapshot {self._full(volume)}@"
                         f"{snap}: snapshot has dependent clones\nuse '-R' "
                         f"to destroy the following datasets:\n{listed}")
        del self.volumes[volume]["snapshots"][snap]

    def _newer(self, volume, snap):
        names = list(self.volumes[volume]["snapshots"])
        return names[names.index(snap) + 1:]

    def rollback_record(self, volume, snap):
        self._snapshot(volume, snap)
        newer = self._newer(volume, snap)
        clones = sum(len(self._clones_of(volume, s)) for s in newer)
        return {"snapshots": len(newer), "clones": clones}

    def rollback(self, volume, snap):
        """Roll back like the appliance: newer snapshots and clones go, and
        the volume has the size it had when the snapshot was taken."""
        record = self._snapshot(volume, snap)
        if "volsize" in record:
            self.volumes[volume]["volsize"] = record["volsize"]
        for newer in self._newer(volume, snap):
            for clone in self._clones_of(volume, newer):
                self._check_not_exported(clone, "destroy")
                self.volumes.pop(clone)
            del self.volumes[volume]["snapshots"][newer]

    def clone(self, source, snap, name, sparse=True, readonly=False):
        volume = self._volume(source)
        record = self._snapshot(source, snap)
        if name in self.volumes or name in self.nas_volumes:
            raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                         f"cannot create '{self._full(name)}': dataset "
                         "already exists")
        # a clone has the size of its snapshot, not of the volume now
        self.create_volume(name, record.get("volsize", volume["volsize"]),
                           sparse,
                           volume["volblocksize"],
                           origin=f"{self._full(source)}@{snap}",
                           readonly=readonly)
        self.volumes[name]["data"] = volume.get("data", 0)

    # iSCSI targets --------------------------------------------------------
    def _target(self, iqn):
        try:
            return self.targets[iqn]
        except KeyError:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Target {iqn} not found.") from None

    def target_record(self, iqn):
        target = self._target(iqn)
        return {"name": iqn, "active": target["active"],
                "incoming_users_active": target["chap"],
                "allow_ip": list(target["allow_ip"]),
                "deny_ip": list(target["deny_ip"]),
                "conflicted": False}

    def target_records(self):
        return [self.target_record(iqn) for iqn in self.targets]

    def create_target(self, name, active=True, incoming_users_active=False,
                      allow_ip=None, deny_ip=None):
        if not isinstance(name, str) or not _IQN.match(name):
            raise _error(400, VALIDATION_CLASS, 22,
                         f"Invalid target name: {name!r}")
        if name in self.targets:
            raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                         f"Resource {name} already exists.")
        self.targets[name] = {"active": bool(active),
                              "chap": bool(incoming_users_active),
                              "allow_ip": list(allow_ip or []),
                              "deny_ip": list(deny_ip or []),
                              "luns": {}, "users": {}}

    def delete_target(self, iqn):
        self._target(iqn)
        del self.targets[iqn]

    def lun_records(self, iqn):
        return [{"name": volume, "lun": lun}
                for volume, lun in self._target(iqn)["luns"].items()]

    def add_lun(self, iqn, name, lun=0, mode="wt"):
        target = self._target(iqn)
        self._volume(name)
        for other_iqn, other in self.targets.items():
            if name in other["luns"]:
                raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                             f"Volume {name} is already used.")
        if not isinstance(lun, int) or not 0 <= lun <= 255:
            raise _error(400, VALIDATION_CLASS, 22, f"Invalid LUN: {lun!r}")
        if lun in target["luns"].values():
            raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                         f"Resource {iqn}/{lun} already exists.")
        target["luns"][name] = lun

    def delete_lun(self, iqn, name):
        target = self._target(iqn)
        if name not in target["luns"]:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Lun {name} not found in target {iqn}.")
        del target["luns"][name]

    def lun_owner(self, name):
        """Records ``{"name": iqn, "lun", "pool"}`` of targets exporting it."""
        return [{"name": iqn, "lun": target["luns"][name], "pool": self.pool}
                for iqn, target in self.targets.items()
                if name in target["luns"]]

    def user_records(self, iqn):
        return [{"name": user, "password": password}
                for user, password in self._target(iqn)["users"].items()]

    def add_user(self, iqn, name, password):
        target = self._target(iqn)
        if not isinstance(name, str) or not _CHAP_USER.match(name):
            raise _error(400, VALIDATION_CLASS, 22,
                         "Invalid user name: use letters, digits, - and _")
        if not isinstance(password, str) or \
                not _CHAP_PASSWORD.match(password):
            raise _error(400, VALIDATION_CLASS, 22,
                         "Invalid password: 12 to 255 characters of "
                         "a-zA-Z0-9-_!@%()+?.:;")
        if name in target["users"]:
            raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                         f"Resource {name} already exists.")
        target["users"][name] = password

    def delete_user(self, iqn, name):
        target = self._target(iqn)
        if target["users"].pop(name, None) is None:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"User {name} not found.")

    # NAS volumes and shares -----------------------------------------------
    def _nas_volume(self, name):
        try:
            return self.nas_volumes[name]
        except KeyError:
            raise self._missing(name) from None

    def nas_volume_record(self, name):
        nas = self._nas_volume(name)
        return {"name": name, "full_name": self._full(name),
                "quota": str(nas["quota"]), "used": str(nas.get("data", 0)),
                "reservation": str(nas.get("reservation", 0)),
                "creation": str(nas["creation"]),
                "mountpoint": f"/{self._full(name)}"}

    def nas_volume_records(self):
        return [self.nas_volume_record(name) for name in self.nas_volumes]

    def create_nas_volume(self, name, quota, reservation=0):
        self._check_new_dataset(name)
        quota = self._size(quota, "quota")
        reservation = int(reservation or 0)
        if reservation:
            self._need_space(reservation)
        self.nas_volumes[name] = {"quota": quota, "reservation": reservation,
                                  "creation": int(time.time()), "data": 0}

    def resize_nas_volume(self, name, quota):
        self._nas_volume(name)["quota"] = self._size(quota, "quota")

    def delete_nas_volume(self, name):
        self._nas_volume(name)
        path = self._full(name)
        for share, record in self.shares.items():
            if record["path"] == path:
                raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                             f"cannot destroy '{path}': dataset is busy "
                             f"(shared as {share})")
        del self.nas_volumes[name]

    def share_record(self, name):
        try:
            share = self.shares[name]
        except KeyError:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Share {name} not exists.") from None
        return {"name": name, "path": share["path"],
                "active": share["active"], "nfs": dict(share["nfs"])}

    def share_records(self):
        return [self.share_record(name) for name in self.shares]

    def create_share(self, name, path, active=True, nfs=None):
        if name in self.shares:
            raise _error(409, CONFLICT_CLASS, ERRNO_NOT_FOUND,
                         f"Share {name} already exists.")
        pool, _, dataset = str(path).partition("/")
        if pool != self.pool or dataset not in self.nas_volumes:
            raise _error(500, ZFS_RESOURCE_CLASS, ERRNO_NOT_FOUND,
                         f"Zfs resource: {path} not found in this "
                         "collection.")
        settings = {"enabled": True, "insecure_connections": False,
                    "synchronous_data_record": True,
                    "insecure_lock_requests": False, "all_squash": False,
                    "no_root_squash": True}
        settings.update(nfs or {})
        self.shares[name] = {"path": str(path), "active": bool(active),
                             "nfs": settings}

    def delete_share(self, name):
        self.share_record(name)
        del self.shares[name]
