"""Snapshots of NAS volumes.

A part of :class:`jdss.storage.Storage`. A NAS snapshot holds every file
of the NAS volume. The Proxmox plugin takes one per guest snapshot and
has it taken once for the guest's several disks: a snapshot of the same
name made moments ago (``reuse_within`` seconds, by the appliance's
clock) is reused; an older one is refused, never taken for this one.
"""

import time

from jdss import errors, naming
from jdss.changes import one_change_per_nas_volume


class NasSnapshotOperations:
    """Snapshots of the NAS volumes of ``self.backend``."""

    @staticmethod
    def _nas_snapshot_view(info, reused=None):
        view = {"name": info.name, "nas_volume": info.volume,
                "creation": int(info.creation), "guid": info.guid,
                "used": info.used}
        if reused is not None:
            view["reused"] = reused
        return view

    def list_nas_snapshots(self, name, prefix=None):
        """Snapshots of NAS volume ``name``, oldest first; with ``prefix``
        only those whose name starts with it."""
        naming.validate_nas_volume_name(name)
        try:
            infos = self.backend.list_nas_snapshots(name)
        except errors.NotFound:
            raise errors.NotFound(f"NAS volume {name!r} not found in pool "
                                  f"{self.config.pool}") from None
        return [self._nas_snapshot_view(i) for i in infos
                if not prefix or i.name.startswith(prefix)]

    def _get_nas_snapshot(self, name, snapshot):
        try:
            return self.backend.get_nas_snapshot(name, snapshot)
        except errors.NotFound:
            self._get_nas_volume(name)          # the volume, if that is it
            raise errors.NotFound(f"snapshot {snapshot!r} of NAS volume "
                                  f"{name!r} not found") from None

    @one_change_per_nas_volume
    def create_nas_snapshot(self, name, snapshot, reuse_within=0):
        naming.validate_nas_snapshot_name(snapshot)
        try:
            self.backend.create_nas_snapshot(name, snapshot)
        except errors.NotFound:
            raise errors.NotFound(f"NAS volume {name!r} not found in pool "
                                  f"{self.config.pool}") from None
        except errors.AlreadyExists:
            info = self._get_nas_snapshot(name, snapshot)
            age = time.time() - info.creation
            if reuse_within and abs(age) <= reuse_within:
                return self._nas_snapshot_view(info, reused=True)
            made = time.strftime("%Y-%m-%d %H:%M:%S",
                                 time.localtime(info.creation))
            raise errors.AlreadyExists(
                f"snapshot {snapshot!r} of NAS volume {name!r} already "
                f"exists, made {made} ({age:.0f} s ago), not by this "
                f"snapshot: delete it ('jdss nas-snapshot delete {name} "
                f"{snapshot}') or use another name") from None
        return self._nas_snapshot_view(
            self._get_nas_snapshot(name, snapshot), reused=False)

    @one_change_per_nas_volume
    def delete_nas_snapshot(self, name, snapshot):
        naming.validate_nas_snapshot_name(snapshot)
        try:
            self.backend.delete_nas_snapshot(name, snapshot)
        except errors.NotFound:
            self._get_nas_volume(name)
            raise errors.NotFound(f"snapshot {snapshot!r} of NAS volume "
                                  f"{name!r} not found") from None
        except errors.Busy:
            clones = self.backend.nas_snapshot_clones(name, snapshot)
            raise errors.Busy(
                f"snapshot {snapshot!r} of NAS volume {name!r} has clones: "
                f"{', '.join(clones) or 'unnamed'} (a restore from it is "
                "running, or run 'jdss cleanup')") from None
