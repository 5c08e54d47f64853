"""Storage operations in Proxmox terms, on top of any backend.

This is where names are mapped, sizes rounded, rollbacks checked and
multi-step operations (exports, clones) undone when a step fails, so every
backend behaves the same. Errors name the Proxmox objects, not the
appliance's.
"""

import dataclasses
import logging

from jdss import errors, naming
from jdss.backends.base import VolumeInfo
from jdss.changes import makes_volume_from, one_change_per_volume
from jdss.exports import ExportOperations
from jdss.nas import NasOperations
from jdss.nas_snapshots import NasSnapshotOperations
from jdss.restore import RestoreOperations
from jdss.snapshots import SnapshotOperations
from jdss.sizes import MAX_SIZE, parse_size, round_up

LOG = logging.getLogger(__name__)
NAME_TRIES = 10        # free disk names tried while others take them
BLOCK_BYTES = {"4K": 4 << 10, "8K": 8 << 10, "16K": 16 << 10, "32K": 32 << 10, "64K": 64 << 10,
               "128K": 128 << 10, "256K": 256 << 10, "512K": 512 << 10,
               "1M": 1 << 20}


def _rounded(size, block_size):
    """``size`` in bytes rounded up to ``block_size``, refused when the
    rounding takes it past the largest volume ZFS allows."""
    rounded = round_up(parse_size(size), BLOCK_BYTES.get(block_size, 1))
    if rounded > MAX_SIZE:
        raise errors.InvalidInput(
            f"invalid size {size!r}: rounded up to the block size "
            f"({block_size}) it is {rounded} bytes, more than the "
            f"largest volume ({MAX_SIZE} bytes)")
    return rounded


class Storage(SnapshotOperations, ExportOperations, NasOperations,
              NasSnapshotOperations, RestoreOperations):
    """The pool of one configuration, addressed by Proxmox names.

    Volumes are here; snapshots and rollbacks in :mod:`jdss.snapshots`,
    exports and attachments in :mod:`jdss.exports`, NAS volumes and shares
    in :mod:`jdss.nas`, their snapshots in :mod:`jdss.nas_snapshots`, the
    restore of a file from one in :mod:`jdss.restore`.
    """

    def __init__(self, config, backend):
        self.config = config
        self.backend = backend
        self.names = naming.Names(config.cluster_prefix)

    # views ----------------------------------------------------------------
    def _volume_view(self, name, info):
        origin = None
        if info.origin:
            source, snap = info.origin
            source = self.names.from_appliance_volume(source) or source
            origin = f"{source}@{naming.from_appliance_snapshot(snap) or snap}"
        return {"name": name, "appliance_name": info.name, "size": info.size,
                "used": info.used, "thin": info.sparse,
                "block_size": info.block_size, "origin": origin,
                "creation": info.creation, "readonly": info.readonly}

    # pool -----------------------------------------------------------------
    def pool(self):
        info = self.backend.get_pool()
        return {"name": info.name, "id": info.id, "size": info.size,
                "free": info.free, "used": info.used, "health": info.health}

    # volumes --------------------------------------------------------------
    def list_volumes(self):
        views = {}
        for info in self.backend.list_volumes():
            name = self.names.from_appliance_volume(info.name)
            if name is None:
                continue
            if name in views:
                # made twice by releases before one name had one volume:
                # the current form is the one every command uses
                shadowed = sorted([views[name]["appliance_name"],
                                   info.name])
                LOG.warning("volume %r exists as %s and %s; %s is used",
                            name, *shadowed,
                            self.names.to_appliance_volume(name))
                if info.name != self.names.to_appliance_volume(name):
                    continue
            views[name] = self._volume_view(name, info)
        return sorted(views.values(), key=lambda view: view["name"])

    def _legacy_volume(self, name):
        """The volume an older release named ``name`` by (``vb_``), if it
        exists: a request per older form."""
        for aname in self.names.legacy_volume_names(name):
            try:
                return self.backend.get_volume(aname)
            except errors.NotFound:
                continue
        return None

    def _get_volume(self, name):
        naming.validate_volume_name(name)
        try:
            return self.backend.get_volume(
                self.names.to_appliance_volume(name))
        except errors.NotFound:
            legacy = self._legacy_volume(name)
            if legacy is None:
                raise errors.NotFound(f"volume {name!r} not found") \
                    from None
            return legacy

    def _on_volume(self, name, operation):
        """``operation(appliance name)`` on volume ``name``: under its own
        name, or, if the appliance answers not found, under the name an
        older release gave it, when that exists. Costs nothing extra
        unless the volume is missing or has an older name."""
        naming.validate_volume_name(name)
        try:
            return operation(self.names.to_appliance_volume(name))
        except errors.NotFound:
            legacy = self._legacy_volume(name)
            if legacy is None:
                raise
        return operation(legacy.name)

    def _check_name_free(self, name):
        """Refuse a new volume ``name`` while an older form of it exists:
        one Proxmox name, one appliance volume."""
        legacy = self._legacy_volume(name)
        if legacy is not None:
            raise errors.AlreadyExists(
                f"volume {name!r} already exists (as {legacy.name}, named "
                "by an older release)")

    def volume(self, name):
        return self._volume_view(name, self._get_volume(name))

    def _made(self, name, made):
        """The view of volume ``name`` that a change just made.

        Read back from the appliance; if another call removed it meanwhile,
        the change still happened, so ``made`` (the VolumeInfo the change
        gave it) is shown rather than turning success into "not found".
        """
        try:
            return self.volume(name)
        except errors.NotFound:
            return self._volume_view(name, made)

    def _sparse(self, thin):
        return self.config.thin_provision if thin is None else thin

    def for_next_disk(self, vmid, make):
        """``make(name)`` with guest ``vmid``'s next free disk name, as
        Proxmox picks it (:func:`naming.next_disk_name`). Another node may
        take that name between the listing and ``make``: the appliance
        then refuses it (AlreadyExists) and the next free one is tried,
        up to NAME_TRIES times; a refusal the listing does not explain (the
        same name found free again) is the error. A name ``make`` cannot
        use though it is free (NameHeld) is passed over. Returns what
        ``make`` returns."""
        refused, held = None, []
        races = 0
        while True:
            name = naming.next_disk_name(
                [view["name"] for view in self.list_volumes()] + held, vmid)
            if name is None:
                raise errors.AlreadyExists(
                    f"guest {vmid} has all {naming.MAX_DISKS_PER_GUEST} "
                    "disk names taken")
            if refused is not None and name == refused[0]:
                raise refused[1]
            try:
                return make(name)
            except errors.NameHeld as exc:
                LOG.info("%s; trying the next free name", exc)
                held.append(name)
            except errors.AlreadyExists as exc:
                LOG.info("%s; trying the next free name", exc)
                refused = (name, exc)
                races += 1
                if races == NAME_TRIES:
                    raise errors.AlreadyExists(
                        f"the next free disk name of guest {vmid} was taken "
                        f"by another maker {NAME_TRIES} times running; try "
                        "again") from None

    @one_change_per_volume
    def create_volume(self, name, size, thin=None, block_size=None):
        block_size = (block_size or self.config.jovian_block_size).upper()
        if block_size not in BLOCK_BYTES:
            raise errors.InvalidInput(
                f"invalid block size {block_size!r}; expected one of "
                + ", ".join(BLOCK_BYTES))
        size = _rounded(size, block_size)
        aname = self.names.to_appliance_volume(name)
        self._check_name_free(name)
        try:
            self.backend.create_volume(aname, size, self._sparse(thin),
                                       block_size)
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"volume {name!r} already exists") from None
        except errors.NoSpace as exc:
            raise errors.NoSpace(f"not enough space for volume {name!r} "
                                 f"({size} bytes): {exc}") from None
        return self._made(name, VolumeInfo(aname, size, 0, block_size,
                                           self._sparse(thin)))

    @one_change_per_volume
    def delete_volume(self, name, recursive=False):
        info = self._get_volume(name)
        try:
            self.backend.delete_volume(info.name, recursive=recursive)
        except errors.NotFound:
            # deleted meanwhile by another call: this one did not delete it
            raise errors.NotFound(f"volume {name!r} not found") from None
        except errors.Busy as exc:
            raise self._why_busy(name, info.name, exc) from None
        if info.origin and self._is_hidden_origin(name, info):
            self._drop_hidden_snapshot(*info.origin)

    def _is_hidden_origin(self, name, info):
        """Whether ``info``'s origin snapshot was made for this clone alone:
        jdss's ``c_<clone>``, or the vendor's plugin's ``v_<clone>`` (a
        linked clone of a template); it goes with the clone."""
        snap = info.origin[1]
        return snap.startswith("c_") or snap in (info.name, "v_" + name)

    def _drop_hidden_snapshot(self, volume, snap):
        try:
            self.backend.delete_snapshot(volume, snap)
        except (errors.NotFound, errors.Busy):
            pass
        except errors.JdssError as exc:
            LOG.warning("could not delete snapshot %s@%s that a deleted "
                        "clone used: %s", volume, snap, exc)

    def _why_busy(self, name, aname, exc):
        text = str(exc)
        if "exported" in text or "dataset is busy" in text:
            return errors.Busy(f"volume {name!r} is exported as an iSCSI "
                               f"target; run 'jdss target delete {name}' "
                               "first")
        snapshots = self.backend.list_snapshots(aname)
        clones = [c for s in snapshots
                  for c in self._clone_names(aname, s.name)]
        if clones:
            return errors.Busy(f"volume {name!r} has clones that depend on "
                               f"its snapshots: {', '.join(clones)}; delete "
                               "them first")
        names = [naming.from_appliance_snapshot(s.name) or s.name
                 for s in snapshots]
        return errors.Busy(f"volume {name!r} has snapshots: "
                           f"{', '.join(names)}; delete them or use "
                           "--recursive")

    @one_change_per_volume
    def resize_volume(self, name, size):
        info = self._get_volume(name)
        size = _rounded(size, info.block_size)
        if size < info.size:
            raise errors.InvalidInput(
                f"volume {name!r} is {info.size} bytes; shrinking to {size} "
                "would destroy data, only growing is supported")
        if size > info.size:
            try:
                self.backend.resize_volume(info.name, size)
            except errors.NoSpace as exc:
                raise errors.NoSpace(f"not enough space to grow volume "
                                     f"{name!r} to {size} bytes: {exc}") \
                    from None
        # the volume as read before, at its new size: growing changes
        # nothing else Proxmox reads, and a read-back would be one more
        # request (the vendor's resize makes two)
        return self._volume_view(name, dataclasses.replace(info, size=size))

    @makes_volume_from
    def rename_volume(self, name, new_name):
        info = self._get_volume(name)
        self._check_name_free(new_name)
        try:
            self.backend.rename_volume(
                info.name, self.names.to_appliance_volume(new_name))
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"volume {new_name!r} already exists") from None
        except errors.Busy:
            raise errors.Busy(f"volume {name!r} is exported as an iSCSI "
                              f"target; run 'jdss target delete {name}' "
                              "first") from None
        return self._made(new_name, dataclasses.replace(
            info, name=self.names.to_appliance_volume(new_name)))

    @makes_volume_from
    def clone_volume(self, source, new_name, snapshot=None, thin=None):
        info = self._get_volume(source)
        clone = self.names.to_appliance_volume(new_name)
        self._check_name_free(new_name)
        if snapshot is None:
            snap = naming.clone_origin_snapshot(clone)
            try:
                self._create_snapshot(source, info.name, snap, hidden=True)
            except errors.AlreadyExists:
                self._renew_hidden_snapshot(source, info.name, snap, clone,
                                            new_name)
        else:
            naming.validate_snapshot_name(snapshot)
            snap = naming.snapshot_name(snapshot)
        try:
            self.backend.clone_volume(info.name, snap, clone,
                                      sparse=self._sparse(thin))
        except errors.JdssError as exc:
            if snapshot is None:
                self._drop_hidden_snapshot(info.name, snap)
            if isinstance(exc, errors.AlreadyExists):
                raise errors.AlreadyExists(
                    f"volume {new_name!r} already exists") from None
            if isinstance(exc, errors.NotFound):
                raise errors.NotFound(f"snapshot {snapshot!r} of volume "
                                      f"{source!r} not found") from None
            raise
        self._provision_clone(new_name, clone, info.name, snap,
                              self._sparse(thin), hidden=snapshot is None)
        return self._made(new_name, VolumeInfo(
            clone, info.size, 0, info.block_size, self._sparse(thin),
            origin=(info.name, snap)))

    def _provision_clone(self, name, clone, source, snap, sparse, hidden):
        """Give a new clone its provisioning explicitly, as the appliance's
        own clients do; a clone that cannot have it is removed again."""
        try:
            self.backend.set_provisioning(clone, sparse)
        except errors.JdssError as exc:
            self._drop_volume(clone)
            if hidden:
                self._drop_hidden_snapshot(source, snap)
            kind = "thin" if sparse else "thick"
            raise type(exc)(f"clone {name!r} could not be made {kind}, "
                            f"so it was removed again: {exc}") from None

    def _snapshot_clones(self, aname, snap):
        """For a message: the clones of ``aname@snap``, none if unknown."""
        try:
            return self.backend.snapshot_clones(aname, snap)
        except errors.JdssError:
            return []

    def _renew_hidden_snapshot(self, source, aname, snap, clone, new_name):
        """A hidden snapshot without its clone is left from an interrupted
        clone: replace it, since the clone must show the current state."""
        try:
            self.backend.get_volume(clone)
        except errors.NotFound:
            pass
        else:
            raise errors.AlreadyExists(
                f"volume {new_name!r} already exists") from None
        try:
            self.backend.delete_snapshot(aname, snap)
        except errors.Busy:
            clones = self._snapshot_clones(aname, snap)
            if clone in clones:          # made meanwhile, by another maker
                raise errors.AlreadyExists(
                    f"volume {new_name!r} already exists") from None
            holders = ", ".join(
                repr(self.names.from_appliance_volume(other) or other)
                for other in clones)
            raise errors.NameHeld(
                f"a clone named {new_name!r} cannot be made from {source!r}: "
                f"its clone snapshot {snap} is held by {holders or 'a clone'}"
                " (renamed since); choose another name") from None
        self._create_snapshot(source, aname, snap, hidden=True)
