"""Restoring one file of a NAS volume from one of its snapshots.

A part of :class:`jdss.storage.Storage`. The snapshot is cloned to a
temporary NAS volume (``t_restore_<hash of pool, volume and file>``,
``t_<cluster prefix>_restore_<hash>`` with a cluster prefix),
shared, mounted in a private mount namespace (:mod:`jdss.privatens`), and
the file copied back beside the current one and renamed over it, so a
crash never leaves half a file; then the share and the clone are removed,
also after a failure. Every other file stays as it is. A rerun for the
same file first removes whatever an interrupted one left (the clone, its
share, the partial copy); no mount survives its process. ``jdss cleanup``
removes clones whose restore is not running.
"""

import contextlib
import logging
import os
import subprocess

from jdss import errors, locks, naming, privatens
from jdss.changes import changes

LOG = logging.getLogger(__name__)
#: where the private namespace mounts a clone (a tmpfs there, in it only)
PRIVATE_MOUNTS = "/run/jdss/restore"
PARTIAL_SUFFIX = ".jdss-restore"


def relative_path(path):
    """``path`` checked: relative, normalised, inside the NAS volume."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise errors.InvalidInput("the file to restore must be named")
    clean = os.path.normpath(path)
    if os.path.isabs(path) or clean in (".", "..") or \
            clean.startswith("../") or clean != path.rstrip("/"):
        raise errors.InvalidInput(
            f"invalid file {path!r}: give its path inside the NAS volume, "
            "relative and without . or .. parts")
    return clean


def destination(mountpoint, relpath):
    """Where ``relpath`` is under ``mountpoint``; refused when a symlink
    would take it elsewhere."""
    if not os.path.isdir(mountpoint):
        raise errors.InvalidInput(f"{mountpoint} is not a directory")
    root = os.path.realpath(mountpoint)
    target = os.path.join(root, relpath)
    existing = os.path.dirname(target)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    inside = os.path.realpath(existing)
    if os.path.islink(target) or not (inside == root or
                                      inside.startswith(root + "/")):
        raise errors.InvalidInput(f"{relpath} leads out of {mountpoint} "
                                  "(a symbolic link): refused")
    return target


def partial_path(target):
    """The copy in progress beside ``target`` (one name: a rerun finds it;
    Proxmox lists no such file)."""
    head, tail = os.path.split(target)
    return os.path.join(head, f".{tail}{PARTIAL_SUFFIX}")


def _unlink(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def copy_file(source, target):
    """Copy ``source`` over ``target`` (holes, mode, owner and times kept)
    through a partial copy, synced, then renamed."""
    partial = partial_path(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _unlink(partial)
    proc = subprocess.run(
        ["cp", "--sparse=always", "--preserve=mode,ownership,timestamps",
         "--", source, partial], capture_output=True, text=True,
        preexec_fn=privatens.die_with_parent)
    if proc.returncode:
        _unlink(partial)
        raise errors.BackendError(f"cannot copy the file back: "
                                  f"{proc.stderr.strip()}")
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(partial, target)
    fd = os.open(os.path.dirname(target), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return os.stat(target).st_size


def _copy_from_clone(transport, properties, relpath, target, what):
    """In the private namespace: mount the clone, copy the file out."""
    os.makedirs(PRIVATE_MOUNTS, mode=0o700, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700,size=1m",
                    "jdss-restore", PRIVATE_MOUNTS], check=True,
                   capture_output=True)
    properties = dict(properties,
                      mountpoint=os.path.join(PRIVATE_MOUNTS, "clone"))
    os.mkdir(properties["mountpoint"])
    transport.connect(properties)
    try:
        root = os.path.realpath(properties["mountpoint"])
        source = os.path.join(root, relpath)
        inside = os.path.realpath(source)
        if not inside.startswith(root + "/") or os.path.islink(source) \
                or not os.path.isfile(source):
            raise errors.NotFound(f"{what} holds no file {relpath}")
        return copy_file(source, target)
    finally:
        transport.disconnect(properties)


class RestoreOperations:
    """Files of NAS volumes restored from their snapshots."""

    @changes
    def restore_nas_file(self, name, snapshot, path, mountpoint, transport,
                         options=None):
        """Restore file ``path`` of NAS volume ``name``, mounted here at
        ``mountpoint``, as it is in ``snapshot``."""
        naming.validate_nas_volume_name(name)
        naming.validate_nas_snapshot_name(snapshot)
        relpath = relative_path(path)
        target = destination(mountpoint, relpath)
        clone = self.names.restore_clone_name(self.config.pool, name, relpath)
        what = f"snapshot {snapshot!r} of NAS volume {name!r}"
        with locks.nas_lock(self.config, clone):
            self._check_mounted(name, mountpoint, transport)
            self.remove_restore_clone(clone)
            _unlink(partial_path(target))
            self._clone_snapshot(name, snapshot, clone, what)
            try:
                share = self.backend.create_share(
                    clone, f"{self.config.pool}/{clone}") \
                    or self._find_share(clone)
                exports = self._share_exports(share)
                size = privatens.run(
                    _copy_from_clone, transport,
                    {"export": exports[0], "exports": exports,
                     "options": options}, relpath, target, what)
            except BaseException:
                self._remove_after_failure(clone, (name, snapshot))
                raise
            try:
                self.remove_restore_clone(clone, (name, snapshot))
            except errors.JdssError as exc:
                raise type(exc)(f"{relpath} was restored, but its temporary "
                                f"clone {clone} was not removed: {exc}; "
                                "run 'jdss cleanup'") from None
        return {"nas_volume": name, "snapshot": snapshot, "path": relpath,
                "size": size}

    def _check_mounted(self, name, mountpoint, transport):
        share = self._find_share(name)
        exports = self._share_exports(share) if share else []
        if not share or not transport.is_attached(
                {"export": exports[0], "exports": exports,
                 "mountpoint": mountpoint}):
            raise errors.InvalidInput(
                f"NAS volume {name!r} is not mounted at {mountpoint}: "
                "nothing restored (mount it with 'jdss nas-volume attach')")

    def _clone_snapshot(self, name, snapshot, clone, what):
        with locks.nas_lock(self.config, name):
            try:
                self.backend.create_nas_clone(name, snapshot, clone)
            except errors.NotFound:
                self._get_nas_volume(name)
                raise errors.NotFound(f"{what} not found") from None

    def _remove_after_failure(self, clone, origin):
        try:
            self.remove_restore_clone(clone, origin)
        except errors.JdssError as exc:
            LOG.warning("could not remove the temporary clone %s: %s "
                        "(run 'jdss cleanup')", clone, exc)

    def remove_restore_clone(self, clone, origin=None):
        """Remove restore clone ``clone`` and its share, if they exist
        (``origin``: its ``(NAS volume, snapshot)`` when known). The
        caller holds the clone's lock."""
        if origin is None:
            try:
                info = self.backend.get_nas_volume(clone)
            except errors.NotFound:
                return
            origin = info.origin or self._origin_of(clone)
        with contextlib.suppress(errors.NotFound):
            self.backend.delete_share(clone)
        if origin is None:
            raise errors.Busy(f"temporary NAS volume {clone} is not a clone "
                              "of a snapshot the appliance lists: remove "
                              "it by hand")
        with locks.nas_lock(self.config, origin[0]):
            with contextlib.suppress(errors.NotFound):
                self.backend.delete_nas_clone(origin[0], origin[1], clone)

    def _origin_of(self, clone):
        """``(NAS volume, snapshot)`` that ``clone`` was made from, for
        appliances whose records do not tell it."""
        for volume in self.backend.list_nas_volumes():
            for snap in self.backend.list_nas_snapshots(volume.name):
                if clone in self.backend.nas_snapshot_clones(volume.name,
                                                             snap.name):
                    return volume.name, snap.name
        return None
