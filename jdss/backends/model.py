"""A model of one JovianDSS pool: the state behind the fake and the emulator.

The model keeps its state in a plain JSON-serialisable dict and answers in
the appliance's own record formats; failures are raised as
:class:`ApplianceError` with the status, class, errno and message the
appliance uses. It enforces ZFS rules: thick volumes reserve their size,
clones depend on their origin snapshot, a rollback destroys newer snapshots
(and their clones), a volume is a LUN of one target at most.

Two firmware generations answer some requests differently (the section
"Answer shapes" of the REST notes); ``firmware`` (``newer`` or ``older``)
chooses the one records and errors follow. Changes that touch volume data
are also written to ``events``, for a data mirror (see
:mod:`jdss.backends.tgt`) to replay once the change is committed, and
changes of NAS volumes to ``nas_events``, for their files (see
:mod:`jdss.backends.nasdata`).
"""

import hashlib
import re
import secrets
import time

from jdss.backends.appliance import (
    CONFLICT_CLASS, ERRNO_BUSY, ERRNO_EXISTS, ERRNO_NOT_FOUND, ERRNO_ZFS,
    NOT_FOUND_CLASS, VALIDATION_CLASS, WERKZEUG_NOT_FOUND, ZFS_CMD_CLASS,
    ZFS_OE_CLASS, ZFS_OE_CLASS_OLDER, ZFS_RESOURCE_CLASS, ApplianceError,
    format_snapshot_time)

STATE_VERSION = 1
FIRMWARES = ("newer", "older")
SNAPSHOT_ORDERS = ("created", "reverse", "random")
BLOCK_SIZES = {"4K": 4 << 10, "8K": 8 << 10, "16K": 16 << 10,
               "32K": 32 << 10, "64K": 64 << 10, "128K": 128 << 10,
               "256K": 256 << 10, "512K": 512 << 10, "1M": 1 << 20}
LUN_MODES = ("wt", "wb", "ro")
TARGET_FIELDS = ("name", "active", "incoming_users_active", "allow_ip",
                 "deny_ip", "vip_allowed_portals")
_ZFS_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_CHAP_USER = re.compile(r"^\w([a-zA-Z0-9-_]*\w)?$")
_CHAP_PASSWORD = re.compile(r"^[a-zA-Z0-9\-_!@%()+?.:;]{12,255}$")
_IQN = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[a-z0-9.:_-]*)?|"
                  r"eui\.[0-9A-Fa-f]{16})$")


def new_state(pool, size):
    """State of an empty pool of ``size`` bytes."""
    return {"version": STATE_VERSION,
            "pool": {"name": pool, "size": int(size),
                     "id": pool_id(pool)},
            "volumes": {}, "targets": {}, "nas_volumes": {}, "shares": {}}


def pool_id(pool):
    """A pool's id, the same whenever an empty pool is made again."""
    return str(int(hashlib.sha256(pool.encode()).hexdigest()[:15], 16))


def _error(status, cls, errno, message):
    return ApplianceError(status, cls, errno, message)


def _unexpected(fields):
    """The appliance's schema error for body fields it does not know."""
    quoted = ", ".join(repr(f) for f in fields)
    verb = "was" if len(fields) == 1 else "were"
    return (f"Additional properties are not allowed ({quoted} {verb} "
            "unexpected)")


class PoolModel:
    """Operations on the state of one pool; the caller persists ``state``.

    ``vips`` are the pool's virtual IPs (``{name, address, interface}``);
    ``vip_portals`` False stands for firmware that refuses the target
    field ``vip_allowed_portals``; ``reserved_luns`` are LUN ids no volume
    can have (tgt's controller LUN, when the pool is served by tgt);
    ``nas_usage(name)``, when given, tells the bytes a NAS volume's files
    take (its ``used``), as ZFS would.
    """

    def __init__(self, state, firmware="newer", vips=(), vip_portals=True,
                 reserved_luns=(), nas_usage=None):
        if firmware not in FIRMWARES:
            raise ValueError(f"unknown firmware {firmware!r}")
        self.state = state
        self.firmware = firmware
        self.vips = [dict(v) for v in vips]
        self.vip_portals = vip_portals
        self.reserved_luns = set(reserved_luns)
        self.pool = state["pool"]["name"]
        self.volumes = state["volumes"]
        self.targets = state["targets"]
        self.nas_volumes = state["nas_volumes"]
        self.shares = state["shares"]
        self.nas_usage = nas_usage
        self.events = []
        self.nas_events = []

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

    def _exists(self, full):
        """A dataset exists: older firmware sends errno 5 as a string."""
        if self.firmware == "older":
            return _error(500, CONFLICT_CLASS, str(ERRNO_EXISTS),
                          f"Resource {full} already exists.")
        return _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                      f"Resource {full} already exists.")

    def _check_new_dataset(self, name):
        self._check_name(name)
        if name in self.volumes or name in self.nas_volumes:
            raise self._exists(self._full(name))

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

    def clones_of(self, volume, snap):
        """Names of the volumes cloned from ``volume@snap``."""
        origin = f"{self._full(volume)}@{snap}"
        return [name for name, volume in self.volumes.items()
                if volume.get("origin") == origin]

    @staticmethod
    def _volume_used(volume):
        reserved = 0 if volume["sparse"] else volume["volsize"]
        return max(reserved, volume.get("data", 0))

    def used(self):
        """Bytes allocated in the pool."""
        return (sum(self._volume_used(v) for v in self.volumes.values())
                + sum(max(n.get("reservation", 0), self._nas_used(name))
                      for name, n in self.nas_volumes.items()))

    def available(self):
        return max(self.state["pool"]["size"] - self.used(), 0)

    def _need_space(self, size):
        available = self.available()
        if size > available:
            raise _error(500, ZFS_OE_CLASS, ERRNO_ZFS,
                         f"New zvol size({size}) exceeds available space on "
                         f"pool {self.pool}({available}).")

    def _derived(self, *parts):
        """A stable hex id for records of states older than their ids."""
        text = "/".join([self.state["pool"]["id"]] + [str(p) for p in parts])
        return hashlib.sha256(text.encode()).hexdigest()

    def ids(self, name):
        """``(san:volume_id, scsi_id)`` of volume ``name``."""
        volume = self._volume(name)
        if "scsi_id" in volume:
            return volume["volume_id"], volume["scsi_id"]
        digest = self._derived(name, volume["creation"])
        return digest[:16], digest[16:32]

    def _new_ids(self):
        taken = {self.ids(name)[1] for name in self.volumes}
        while True:
            scsi_id = secrets.token_hex(8)
            if scsi_id not in taken:
                return secrets.token_hex(8), scsi_id

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

    def vip_records(self):
        return [dict(v) for v in self.vips]

    # volumes --------------------------------------------------------------
    def volume_record(self, name, available=None):
        volume = self._volume(name)
        used = self._volume_used(volume)
        if available is None:
            available = self.available()
        volume_id, scsi_id = self.ids(name)
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
                "usedbydataset": str(volume.get("data", 0)),
                "san:volume_id": volume_id, "default_scsi_id": scsi_id}

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
        volume_id, scsi_id = self._new_ids()
        self.volumes[name] = {"volsize": size, "volblocksize": blocksize,
                              "sparse": bool(sparse), "origin": origin,
                              "creation": int(time.time()),
                              "readonly": bool(readonly), "data": 0,
                              "snapshots": {}, "volume_id": volume_id,
                              "scsi_id": scsi_id}
        if origin is None:
            self.events.append(("create", name, size))

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
        self.events.append(("resize", name, size))

    def set_provisioning(self, name, provisioning):
        """``thin`` drops the reservation, ``thick`` reserves the size."""
        volume = self._volume(name)
        if provisioning not in ("thin", "thick"):
            raise _error(400, VALIDATION_CLASS, 22,
                         f"Invalid provisioning: {provisioning!r}")
        if provisioning == "thick" and volume["sparse"]:
            self._need_space(volume["volsize"] - self._volume_used(volume))
        volume["sparse"] = provisioning == "thin"

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
        # the ids stay with the volume, also those derived from its name
        volume_id, scsi_id = self.ids(name)
        volume = self.volumes.pop(name)
        volume.update(volume_id=volume_id, scsi_id=scsi_id)
        self.volumes[new_name] = volume
        self.events.append(("rename", name, new_name,
                            list(volume["snapshots"])))

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
                cls = ZFS_OE_CLASS if self.firmware == "newer" \
                    else ZFS_OE_CLASS_OLDER
                raise _error(500, cls, ERRNO_BUSY,
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
        for snap in [None] + list(volume["snapshots"]):
            self.events.append(("remove", name, snap))

    # snapshots ------------------------------------------------------------
    def _guid(self, volume, snap, record):
        return record.get("guid") or str(
            int(self._derived(volume, snap, record["creation"])[:15], 16))

    def snapshot_record(self, volume, snap, index=None):
        """One snapshot as the firmware lists it: newer firmware nests its
        ZFS properties (creation in epoch seconds) and has no ``clones``;
        older firmware is flat, with creation as ``YYYY-M-D H:M:S``."""
        record = self._snapshot(volume, snap)
        data = str(self.volumes[volume].get("data", 0))
        if self.firmware == "newer":
            return {"name": snap, "properties": {
                "creation": int(record["creation"]),
                "guid": self._guid(volume, snap, record),
                "volsize": str(record.get(
                    "volsize", self.volumes[volume]["volsize"])),
                "used": "0", "referenced": data, "written": "0"}}
        if index is None:
            clones = self.clones_of(volume, snap)
        else:
            clones = index.get(f"{self._full(volume)}@{snap}", [])
        return {"name": snap,
                "creation": format_snapshot_time(record["creation"]),
                "used": "0", "referenced": data, "written": "0",
                "clones": ",".join(self._full(c) for c in clones)}

    def snapshot_names(self, volume, order="created"):
        """Snapshot names in ``order``: ``created``, ``reverse``, or
        ``random`` (an order unrelated to age, the same on every call)."""
        snapshots = self._volume(volume)["snapshots"]
        names = list(snapshots)
        if order == "reverse":
            names.reverse()
        elif order == "random":
            names.sort(key=lambda s: hashlib.sha256(
                self._guid(volume, s, snapshots[s]).encode()).digest())
        return names

    def snapshot_records(self, volume, order="created"):
        names = self.snapshot_names(volume, order)
        index = self._clones_index()
        return [self.snapshot_record(volume, s, index) for s in names]

    def clone_records(self, volume, snap):
        self._snapshot(volume, snap)
        return [{"name": c, "full_name": self._full(c), "is_clone": True}
                for c in self.clones_of(volume, snap)]

    def create_snapshot(self, volume, snap):
        source = self._volume(volume)
        snapshots = source["snapshots"]
        self._check_name(snap)
        if snap in snapshots:
            raise _error(500, ZFS_CMD_CLASS, ERRNO_EXISTS,
                         f"cannot create snapshot '{self._full(volume)}@"
                         f"{snap}': dataset already exists")
        snapshots[snap] = {"creation": time.time(),
                           "guid": str(secrets.randbits(63)),
                           "volsize": source["volsize"]}
        self.events.append(("snapshot", volume, snap))

    def delete_snapshot(self, volume, snap):
        self._snapshot(volume, snap)
        clones = self.clones_of(volume, snap)
        if clones:
            listed = "\n".join(self._full(c) for c in clones)
            raise _error(500, ZFS_CMD_CLASS, ERRNO_BUSY,
                         f"cannot destroy snapshot {self._full(volume)}@"
                         f"{snap}: snapshot has dependent clones\nuse '-R' "
                         f"to destroy the following datasets:\n{listed}")
        del self.volumes[volume]["snapshots"][snap]
        self.events.append(("remove", volume, snap))

    def _newer(self, volume, snap):
        names = list(self.volumes[volume]["snapshots"])
        return names[names.index(snap) + 1:]

    def rollback_record(self, volume, snap):
        self._snapshot(volume, snap)
        newer = self._newer(volume, snap)
        clones = sum(len(self.clones_of(volume, s)) for s in newer)
        return {"snapshots": len(newer), "clones": clones}

    def rollback(self, volume, snap):
        """Roll back like the appliance: newer snapshots and clones go, and
        the volume has the size it had when the snapshot was taken."""
        record = self._snapshot(volume, snap)
        newer = self._newer(volume, snap)
        for name in newer:
            for clone in self.clones_of(volume, name):
                self._check_not_exported(clone, "destroy")
        for name in newer:
            for clone in self.clones_of(volume, name):
                self.volumes.pop(clone)
                self.events.append(("remove", clone, None))
            del self.volumes[volume]["snapshots"][name]
            self.events.append(("remove", volume, name))
        if "volsize" in record:
            self.volumes[volume]["volsize"] = record["volsize"]
        self.events.append(("rollback", volume, snap))

    def clone(self, source, snap, name, sparse=True, readonly=False):
        volume = self._volume(source)
        record = self._snapshot(source, snap)
        if name in self.volumes or name in self.nas_volumes:
            raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                         f"cannot create '{self._full(name)}': dataset "
                         "already exists")
        # a clone has the size of its snapshot, not of the volume now
        size = record.get("volsize", volume["volsize"])
        self.create_volume(name, size, sparse,
                           volume["volblocksize"],
                           origin=f"{self._full(source)}@{snap}",
                           readonly=readonly)
        self.volumes[name]["data"] = volume.get("data", 0)
        self.events.append(("clone", source, snap, name, size))

    # iSCSI targets --------------------------------------------------------
    def _target(self, iqn):
        try:
            return self.targets[iqn]
        except KeyError:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Target {iqn} not found.") from None

    def target_record(self, iqn):
        target = self._target(iqn)
        record = {"name": iqn, "active": target["active"],
                  "incoming_users_active": target["chap"],
                  "allow_ip": list(target["allow_ip"]),
                  "deny_ip": list(target["deny_ip"]),
                  "conflicted": False}
        if self.vip_portals:
            vip = target.get("vip") or {}
            record["vip_allowed_portals"] = {
                "enabled": bool(vip.get("enabled")),
                "assigned_vips": list(vip.get("assigned_vips", []))}
        return record

    def target_records(self):
        return [self.target_record(iqn) for iqn in self.targets]

    def check_target_body(self, body, creating):
        """Refuse fields the firmware does not know, as its schema does."""
        if not isinstance(body, dict):
            raise _error(400, VALIDATION_CLASS, 22,
                         "Request body must be a JSON object")
        if "vip_allowed_portals" in body and not self.vip_portals:
            status = 500 if self.firmware == "older" else 400
            raise _error(status, VALIDATION_CLASS, 22,
                         _unexpected(["vip_allowed_portals"]))
        unknown = [key for key in body if key not in TARGET_FIELDS]
        if unknown:
            raise _error(400, VALIDATION_CLASS, 22, _unexpected(unknown))
        if creating and "name" not in body:
            raise _error(400, VALIDATION_CLASS, 22, "Missing field: name")
        if "vip_allowed_portals" in body:
            self._check_vips(body["vip_allowed_portals"])

    def _check_vips(self, value):
        if not isinstance(value, dict) or not isinstance(
                value.get("enabled"), bool) or not isinstance(
                value.get("assigned_vips", []), list):
            raise _error(400, VALIDATION_CLASS, 22,
                         "vip_allowed_portals: expected {enabled, "
                         "assigned_vips}")
        names = {v["name"] for v in self.vips}
        for vip in value.get("assigned_vips", []):
            if vip not in names:
                raise _error(400, VALIDATION_CLASS, 22,
                             f"Virtual IP {vip} does not exist in pool "
                             f"{self.pool}.")

    def create_target(self, name, active=True, incoming_users_active=False,
                      allow_ip=None, deny_ip=None, vip_allowed_portals=None):
        if not isinstance(name, str) or not _IQN.match(name) or \
                len(name.encode()) > 223:
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
        if vip_allowed_portals is not None:
            self.targets[name]["vip"] = dict(vip_allowed_portals)

    def update_target(self, iqn, **fields):
        target = self._target(iqn)
        for key, field in (("active", "active"),
                           ("incoming_users_active", "chap"),
                           ("allow_ip", "allow_ip"), ("deny_ip", "deny_ip"),
                           ("vip_allowed_portals", "vip")):
            if key in fields:
                target[field] = fields[key]

    def delete_target(self, iqn):
        self._target(iqn)
        del self.targets[iqn]

    def lun_record(self, iqn, name):
        target = self._target(iqn)
        if name not in target["luns"]:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Lun {name} not found in target {iqn}.")
        scsi_id = self.ids(name)[1] if name in self.volumes \
            else self._derived(name)[:16]
        return {"name": name, "lun": target["luns"][name],
                "mode": target.get("modes", {}).get(name, "wt"),
                "scsi_id": scsi_id}

    def lun_records(self, iqn):
        return [self.lun_record(iqn, name)
                for name in self._target(iqn)["luns"]]

    def add_lun(self, iqn, name, lun=0, mode="wt"):
        target = self._target(iqn)
        self._volume(name)
        for other in self.targets.values():
            if name in other["luns"]:
                raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                             f"Volume {name} is already used.")
        if not isinstance(lun, int) or isinstance(lun, bool) or \
                not 0 <= lun <= 255:
            raise _error(400, VALIDATION_CLASS, 22, f"Invalid LUN: {lun!r}")
        if mode not in LUN_MODES:
            raise _error(400, VALIDATION_CLASS, 22, f"Invalid mode: {mode!r}")
        if lun in target["luns"].values() or lun in self.reserved_luns:
            raise _error(409, CONFLICT_CLASS, ERRNO_EXISTS,
                         f"Resource {iqn}/{lun} already exists.")
        target["luns"][name] = lun
        target.setdefault("modes", {})[name] = mode

    def delete_lun(self, iqn, name):
        target = self._target(iqn)
        if name not in target["luns"]:
            raise _error(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Lun {name} not found in target {iqn}.")
        del target["luns"][name]
        target.get("modes", {}).pop(name, None)

    def lun_owner(self, name):
        """Who exports volume ``name``: ``{pool, iscsi_target, lun}`` records
        with the target and the LUN nested, as the appliance answers."""
        return [{"pool": self.pool, "iscsi_target": self.target_record(iqn),
                 "lun": self.lun_record(iqn, name)}
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

    # NAS volumes, their snapshots and clones, shares -------------------------
    def _nas_volume(self, name):
        try:
            return self.nas_volumes[name]
        except KeyError:
            status = 404 if self.firmware == "newer" else 500
            raise _error(status, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                         f"Nas volume {self._full(name)} not found.") \
                from None

    def _nas_used(self, name):
        if self.nas_usage is not None:
            return self.nas_usage(name)
        return self.nas_volumes[name].get("data", 0)

    def nas_volume_record(self, name, pool_available=None):
        """A dataset's properties; ``available`` honours its quota."""
        nas = self._nas_volume(name)
        used = self._nas_used(name)
        if pool_available is None:
            pool_available = self.available()
        available = min(max(nas["quota"] - used, 0), pool_available)
        return {"name": name, "full_name": self._full(name),
                "quota": str(nas["quota"]), "used": str(used),
                "available": str(available),
                "reservation": str(nas.get("reservation", 0)),
                "creation": str(nas["creation"]),
                "origin": nas.get("origin"),
                "mountpoint": f"/{self._full(name)}"}

    def nas_volume_records(self):
        available = self.available()
        return [self.nas_volume_record(name, available)
                for name in self.nas_volumes]

    def create_nas_volume(self, name, quota, reservation=0, origin=None):
        self._check_new_dataset(name)
        quota = self._size(quota, "quota")
        reservation = int(reservation or 0)
        if reservation:
            self._need_space(reservation)
        self.nas_volumes[name] = {"quota": quota, "reservation": reservation,
                                  "creation": int(time.time()), "data": 0,
                                  "origin": origin, "snapshots": {}}
        if origin is None:
            self.nas_events.append(("create", name))

    def resize_nas_volume(self, name, quota):
        self._nas_volume(name)["quota"] = self._size(quota, "quota")

    def _nas_clones_of(self, name, snap):
        origin = f"{self._full(name)}@{snap}"
        return [n for n, v in self.nas_volumes.items()
                if v.get("origin") == origin]

    def delete_nas_volume(self, name):
        nas = self._nas_volume(name)
        path = self._full(name)
        for share, record in self.shares.items():
            if record["path"] == path:
                raise _error(500, ZFS_CMD_CLASS, ERRNO_ZFS,
                             f"cannot destroy '{path}': dataset is busy "
                             f"(shared as {share})")
        for snap in nas.get("snapshots", {}):
            if self._nas_clones_of(name, snap):
                raise _error(500, ZFS_CMD_CLASS, ERRNO_BUSY,
                             f"cannot destroy '{path}': filesystem has "
                             "dependent clones")
        del self.nas_volumes[name]
        self.nas_events.append(("delete", name, list(nas.get("snapshots",
                                                            {}))))

    def _nas_snapshot(self, name, snap):
        snapshots = self._nas_volume(name).get("snapshots", {})
        if snap not in snapshots:
            raise self._missing(f"{name}@{snap}")
        return snapshots[snap]

    def nas_snapshot_record(self, name, snap):
        record = self._nas_snapshot(name, snap)
        if self.firmware == "newer":
            return {"name": snap, "properties": {
                "creation": int(record["creation"]),
                "guid": self._guid(name, snap, record), "used": "0"}}
        return {"name": snap,
                "creation": format_snapshot_time(record["creation"]),
                "used": "0"}

    def nas_snapshot_records(self, name):
        return [self.nas_snapshot_record(name, s)
                for s in self._nas_volume(name).get("snapshots", {})]

    def create_nas_snapshot(self, name, snap):
        nas = self._nas_volume(name)
        self._check_name(snap)
        snapshots = nas.setdefault("snapshots", {})
        if snap in snapshots:
            raise _error(500, ZFS_CMD_CLASS, ERRNO_EXISTS,
                         f"cannot create snapshot '{self._full(name)}@"
                         f"{snap}': dataset already exists")
        snapshots[snap] = {"creation": time.time(),
                           "guid": str(secrets.randbits(63))}
        self.nas_events.append(("snapshot", name, snap))

    def delete_nas_snapshot(self, name, snap):
        self._nas_snapshot(name, snap)
        if self._nas_clones_of(name, snap):
            raise _error(500, ZFS_CMD_CLASS, ERRNO_BUSY,
                         f"cannot destroy snapshot {self._full(name)}@{snap}"
                         ": snapshot has dependent clones")
        del self.nas_volumes[name]["snapshots"][snap]
        self.nas_events.append(("delete_snapshot", name, snap))

    def nas_clone_records(self, name, snap):
        self._nas_snapshot(name, snap)
        return [self.nas_volume_record(c)
                for c in self._nas_clones_of(name, snap)]

    def create_nas_clone(self, name, snap, clone, **properties):
        nas = self._nas_volume(name)
        self._nas_snapshot(name, snap)
        self.create_nas_volume(clone, properties.get("quota", nas["quota"]),
                               properties.get("reservation", 0),
                               origin=f"{self._full(name)}@{snap}")
        self.nas_volumes[clone]["data"] = nas.get("data", 0)
        self.nas_events.append(("clone", name, snap, clone))

    def delete_nas_clone(self, name, snap, clone):
        self._nas_snapshot(name, snap)
        if clone not in self._nas_clones_of(name, snap):
            raise _error(404, WERKZEUG_NOT_FOUND, None,
                         f"Clone {clone} not exists")
        self.delete_nas_volume(clone)

    def _share_missing(self, name):
        return _error(404, WERKZEUG_NOT_FOUND, None,
                      f"Share {name} not exists.")

    def share_record(self, name):
        try:
            share = self.shares[name]
        except KeyError:
            raise self._share_missing(name) from None
        return {"name": name, "path": share["path"],
                "real_path": "/" + share["path"],
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
