"""``nfs-fake``: the ``nfs`` transport for the fake backend and the emulator.

Their NAS volumes are directories (:mod:`jdss.backends.nasdata`) under
``fake_nfs_root`` (the fake backend's state directory by default, the
emulator's ``--state-dir`` for it); where ``nfs`` would mount
``ADDR:/<pool>/<volume>``, this transport bind-mounts that volume's
directory (as root), so that file operations and qemu-img work on real
files. A bind mount of a directory since removed (the NAS volume was
made again) is this transport's stale mount, as NFS answers ESTALE then.
Everything else (which mount is there, probing, unmounting) is the ``nfs``
transport's.
"""

import os

from jdss.backends.nasdata import volumes_dir
from jdss.errors import AttachFailed
from jdss_nfs.nfs import NFSTransport, mount_entry

DELETED = "//deleted"       # how mountinfo ends a removed directory's path


class FakeNFSTransport(NFSTransport):
    mountinfo_file = "/proc/self/mountinfo"

    def directory(self, export):
        """The directory of the NAS volume an export names
        (``ADDR:/<pool>/<volume>`` or ``ADDR:/Pools/<pool>/<volume>``)."""
        path = export.partition(":")[2].strip("/").split("/")
        if len(path) == 3 and path[0] == "Pools":
            path = path[1:]
        if len(path) != 2 or not all(path):
            raise AttachFailed(f"nfs-fake: cannot tell the NAS volume of "
                               f"export {export!r}")
        root = self.config.fake_nfs_root or self.config.state_dir
        return os.path.join(volumes_dir(root, path[0]), path[1])

    def bound(self, mountpoint):
        """The directory bound at ``mountpoint`` (its path in its own file
        system, ending in ``//deleted`` once removed), or None."""
        entry = mount_entry(self.mountinfo_file, 4, mountpoint)
        return entry[3] if entry else None

    def probe(self, mountpoint):
        state = super().probe(mountpoint)
        root = self.bound(mountpoint) or ""
        return "stale" if state == "ok" and root.endswith(DELETED) else state

    def holds(self, mountpoint, source, properties):
        exports = properties.get("exports") or [properties["export"]]
        root = self.bound(mountpoint) or ""
        if root.endswith(DELETED):       # stale: was it this NAS volume's?
            directory = os.path.realpath(self.directory(exports[0]))
            return directory.endswith(root[:-len(DELETED)])
        try:
            here = os.stat(mountpoint)
            there = os.stat(self.directory(exports[0]))
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def mount(self, export, mountpoint, options):
        directory = self.directory(export)
        if not os.path.isdir(directory):
            return 32, f"{directory}: no such NAS volume directory"
        code, _out, err = self.execute("mount", "--bind", directory,
                                       mountpoint)
        return code, err
