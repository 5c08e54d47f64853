"""NAS volumes (datasets) and their NFS shares.

A part of :class:`jdss.storage.Storage`. Shares are global on the
appliance; those of this pool are the ones whose path starts with it.
"""

from jdss import errors, naming
from jdss.changes import changes
from jdss.progress import Waiting
from jdss.sizes import parse_size


class NasOperations:
    """NAS volumes and shares of ``self.backend``'s pool."""

    def _nas_view(self, info):
        return {"name": info.name, "quota": info.quota, "used": info.used,
                "reservation": info.reservation, "creation": info.creation}

    def list_nas_volumes(self):
        return [self._nas_view(i) for i in self.backend.list_nas_volumes()]

    def nas_volume(self, name):
        naming.validate_nas_volume_name(name)
        try:
            return self._nas_view(self.backend.get_nas_volume(name))
        except errors.NotFound:
            raise errors.NotFound(f"NAS volume {name!r} not found") from None

    @changes
    def create_nas_volume(self, name, size):
        naming.validate_nas_volume_name(name)
        size = parse_size(size)
        try:
            self.backend.create_nas_volume(name, size)
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"a volume named {name!r} already exists in pool "
                f"{self.config.pool}") from None
        return self.nas_volume(name)

    @changes
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

    @changes
    def delete_nas_volume(self, name):
        self.nas_volume(name)
        path = f"{self.config.pool}/{name}"
        for share in self.backend.list_shares():
            if share.path == path:
                self.backend.delete_share(share.name)
        self.backend.delete_nas_volume(name)

    def _share_view(self, share):
        _, _, volume = share.path.partition("/")
        return {"name": share.name, "nas_volume": volume, "path": share.path,
                "active": share.active, "nfs": share.nfs,
                "exports": self._nfs_exports(share.real_path
                                             or "/" + share.path)}

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
        self.nas_volume(name)
        share = self._find_share(name)
        if share is None:
            raise errors.NotFound(f"NAS volume {name!r} is not shared")
        return self._share_view(share)

    @changes
    def create_share(self, name):
        """Share NAS volume ``name`` over NFS; an existing share is kept."""
        self.nas_volume(name)
        share = self._find_share(name)
        if share is None:
            self.backend.create_share(name, f"{self.config.pool}/{name}")
        return self.share(name)

    @changes
    def attach_nas_volume(self, name, mountpoint, transport):
        """Share NAS volume ``name`` (if not yet) and mount it here."""
        share = self.create_share(name)
        properties = {"export": share["exports"][0],
                      "exports": share["exports"], "mountpoint": mountpoint}
        with Waiting(f"mounting {share['exports'][0]} at {mountpoint}"):
            path = transport.connect(properties)
        return {"name": name, "path": path, "export": share["exports"][0],
                "transport": type(transport).__name__}

    def detach_nas_volume(self, name, mountpoint, transport):
        """Unmount ``name`` here; the share stays for the other nodes."""
        naming.validate_nas_volume_name(name)
        exports = self._nfs_exports(f"/{self.config.pool}/{name}")
        transport.disconnect({"export": exports[0], "exports": exports,
                              "mountpoint": mountpoint})

    @changes
    def delete_share(self, name):
        """Stop sharing ``name``; nothing to do if it is not shared."""
        self.nas_volume(name)
        share = self._find_share(name)
        if share is not None:
            self.backend.delete_share(share.name)

    def _nfs_exports(self, export_path):
        """``ADDR:<export path>`` of a share, one per address: the path on
        the appliance as its share record tells it (``real_path``), else
        ``/<pool>/<nas volume>``."""
        return [f"{address}:{export_path}" for address in self._addresses()]
