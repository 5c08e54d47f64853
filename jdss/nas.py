"""NAS volumes (datasets) and their NFS shares.

A part of :class:`jdss.storage.Storage`. Shares are global on the
appliance; those of this pool are the ones whose path starts with it.
Every change of a NAS volume (its creation, share, snapshots, clones)
runs under its lock (:func:`jdss.locks.nas_lock`).
"""

from jdss import errors, locks, naming
from jdss.changes import one_change_per_nas_volume
from jdss.progress import Waiting
from jdss.sizes import parse_size


class NasOperations:
    """NAS volumes and shares of ``self.backend``'s pool."""

    @staticmethod
    def _nas_view(info):
        free = info.available if info.available is not None \
            else max(info.quota - info.used, 0)
        origin = "@".join(info.origin) if info.origin else None
        return {"name": info.name, "size": info.used + free,
                "free": free, "quota": info.quota, "used": info.used,
                "reservation": info.reservation, "creation": info.creation,
                "origin": origin}

    def list_nas_volumes(self):
        return [self._nas_view(i) for i in self.backend.list_nas_volumes()]

    def _get_nas_volume(self, name):
        naming.validate_nas_volume_name(name)
        try:
            return self.backend.get_nas_volume(name)
        except errors.NotFound:
            raise errors.NotFound(f"NAS volume {name!r} not found in pool "
                                  f"{self.config.pool}") from None

    def nas_volume(self, name):
        return self._nas_view(self._get_nas_volume(name))

    def _create_nas_volume(self, name, size):
        naming.validate_new_nas_volume_name(name)
        size = parse_size(size)
        try:
            self.backend.create_nas_volume(name, size)
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"a volume named {name!r} already exists in pool "
                f"{self.config.pool}") from None

    @one_change_per_nas_volume
    def create_nas_volume(self, name, size):
        self._create_nas_volume(name, size)
        return self.nas_volume(name)

    @one_change_per_nas_volume
    def resize_nas_volume(self, name, size):
        """Grow the quota of a NAS volume; never shrink it."""
        current = self.nas_volume(name)
        size = parse_size(size)
        if size < current["quota"]:
            raise errors.InvalidInput(
                f"NAS volume {name!r} has a quota of {current['quota']} "
                f"bytes; lowering it to {size} could leave its data over "
                "quota, only growing is supported")
        if size > current["quota"]:
            try:
                self.backend.resize_nas_volume(name, size)
            except errors.NoSpace as exc:
                raise errors.NoSpace(f"not enough space to grow NAS volume "
                                     f"{name!r} to {size} bytes: {exc}") \
                    from None
        return self.nas_volume(name)

    @one_change_per_nas_volume
    def delete_nas_volume(self, name):
        self._get_nas_volume(name)
        share = self._find_share(name)
        if share is not None:
            self.backend.delete_share(share.name)
        try:
            self.backend.delete_nas_volume(name)
        except errors.Busy:
            raise errors.Busy(f"NAS volume {name!r} has clones of its "
                              "snapshots (a restore is running, or run "
                              "'jdss cleanup'); nothing was deleted") \
                from None

    def _share_view(self, share):
        _, _, volume = share.path.partition("/")
        return {"name": share.name, "nas_volume": volume, "path": share.path,
                "active": share.active, "nfs": share.nfs,
                "exports": self._share_exports(share)}

    def list_shares(self):
        prefix = f"{self.config.pool}/"
        return [self._share_view(s) for s in self.backend.list_shares()
                if s.path.startswith(prefix)]

    def _find_share(self, name):
        path = f"{self.config.pool}/{name}"
        for share in self.backend.list_shares():
            if share.path == path:
                return share
        return None

    def share(self, name):
        self._get_nas_volume(name)
        share = self._find_share(name)
        if share is None:
            raise errors.NotFound(f"NAS volume {name!r} is not shared")
        return self._share_view(share)

    def _ensure_share(self, name, share_name=None):
        """The share of NAS volume ``name``, made (as ``share_name``, by
        default the volume's name) when there is none."""
        share = self._find_share(name)
        if share is None:
            share = self.backend.create_share(
                share_name or name, f"{self.config.pool}/{name}") \
                or self._find_share(name)
        if share is None:
            raise errors.BackendError(f"the share of NAS volume {name!r} "
                                      "is not listed right after it was "
                                      "made")
        return share

    @one_change_per_nas_volume
    def create_share(self, name):
        """Share NAS volume ``name`` over NFS; an existing share is kept."""
        self._get_nas_volume(name)
        return self._share_view(self._ensure_share(name))

    def attach_nas_volume(self, name, mountpoint, transport, options=None,
                          size=None):
        """Share NAS volume ``name`` (if not yet) and mount it here; with
        ``size``, create it first when the pool has none of that name."""
        naming.validate_nas_volume_name(name)
        with locks.nas_lock(self.config, name), self.backend.changing():
            share = self._find_share(name)   # a share: the volume exists
            if share is None:
                try:
                    self.backend.get_nas_volume(name)
                except errors.NotFound:
                    if size is None:
                        raise errors.NotFound(
                            f"NAS volume {name!r} not found in pool "
                            f"{self.config.pool}; create it, or give a "
                            "size to create it with") from None
                    self._create_nas_volume(name, size)
                share = self._ensure_share(name)
        exports = self._share_exports(share)
        properties = {"export": exports[0], "exports": exports,
                      "mountpoint": mountpoint, "options": options}
        with Waiting(f"mounting {exports[0]} at {mountpoint}"):
            path = transport.connect(properties)
        return {"name": name, "path": path, "export": exports[0],
                "transport": type(transport).__name__}

    def detach_nas_volume(self, name, mountpoint, transport):
        """Unmount ``name`` here; the share stays for the other nodes."""
        naming.validate_nas_volume_name(name)
        exports = self._nfs_exports(f"/{self.config.pool}/{name}")
        transport.disconnect({"export": exports[0], "exports": exports,
                              "mountpoint": mountpoint})

    @one_change_per_nas_volume
    def delete_share(self, name):
        """Stop sharing ``name``; nothing to do if it is not shared."""
        self._get_nas_volume(name)
        share = self._find_share(name)
        if share is not None:
            self.backend.delete_share(share.name)

    def _share_exports(self, share):
        """``ADDR:<export path>`` of a share, one per address: the path on
        the appliance as its share record tells it (``real_path``), else
        ``/<pool>/<nas volume>``."""
        return self._nfs_exports(share.real_path or "/" + share.path)

    def _nfs_exports(self, export_path):
        return [f"{address}:{export_path}" for address in self._addresses()]
