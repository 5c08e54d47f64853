"""The files of a model pool's NAS volumes, in real directories.

Every NAS volume of the fake backend and of the emulator is a directory
``<state dir>/<pool>.nas/<name>``; a snapshot is a copy of it in
``<state dir>/<pool>.nas-snapshots/<name>@<snapshot>``, and a clone a
copy of its snapshot, so a snapshot keeps the files it was taken with and
a clone starts from them, as on ZFS. Copies keep holes (disk images stay
sparse). The ``nfs-fake`` transport bind-mounts these directories where
the ``nfs`` transport would mount the share.

A :class:`jdss.backends.store.StateStore` replays each change's
``nas_events`` here before it saves the state, under the pool's lock: a
copy that fails fails the change.
"""

import contextlib
import os
import shutil
import subprocess

from jdss.errors import BackendError


def volumes_dir(state_dir, pool):
    """The directory holding the NAS volumes of ``pool``."""
    return os.path.join(state_dir, f"{pool}.nas")


class NasData:
    """The NAS volume directories of one pool."""

    def __init__(self, state_dir, pool):
        self.volumes = volumes_dir(state_dir, pool)
        self.snapshots = os.path.join(state_dir, f"{pool}.nas-snapshots")

    def path(self, name, snapshot=None):
        if snapshot is None:
            return os.path.join(self.volumes, name)
        return os.path.join(self.snapshots, f"{name}@{snapshot}")

    def apply(self, model):
        """Replay the NAS changes of ``model`` on the directories."""
        for event in model.nas_events:
            getattr(self, event[0])(*event[1:])

    def usage(self, name):
        """Bytes the files of NAS volume ``name`` take on disk."""
        total = 0
        for root, dirs, files in os.walk(self.path(name)):
            for entry in dirs + files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, entry)).st_blocks
        return total * 512

    # events ---------------------------------------------------------------
    def create(self, name):
        os.makedirs(self.path(name), mode=0o755, exist_ok=True)

    def delete(self, name, snapshots=()):
        for snap in [None] + list(snapshots):
            _remove(self.path(name, snap))

    def snapshot(self, name, snap):
        os.makedirs(self.snapshots, mode=0o700, exist_ok=True)
        _copy_tree(self.path(name), self.path(name, snap))

    def delete_snapshot(self, name, snap):
        _remove(self.path(name, snap))

    def clone(self, name, snap, clone):
        _copy_tree(self.path(name, snap), self.path(clone))


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)


def _copy_tree(source, destination):
    """Copy a directory tree keeping holes, owners, modes and times; the
    copy appears whole or not at all."""
    if not os.path.isdir(source):
        os.makedirs(source, mode=0o755, exist_ok=True)
    partial = destination + ".partial"
    _remove(partial)
    proc = subprocess.run(["cp", "-a", "--sparse=always", "--reflink=auto",
                           "--", source, partial], capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode:
        _remove(partial)
        raise BackendError(f"cannot copy {source}: {proc.stderr.strip()}")
    _remove(destination)
    os.rename(partial, destination)
