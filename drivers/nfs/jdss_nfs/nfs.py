"""``nfs``: mounts a NAS volume's share at a directory (the content volume).

Tries the share's exports in order (one per appliance address) and keeps
the first that mounts. Mounting an already mounted export is a no-op;
unmounting a directory that holds nothing is too.
"""

import logging
import os
import subprocess

from jdss.errors import AttachFailed
from jdss.transport import Transport

LOG = logging.getLogger(__name__)
DEFAULT_OPTIONS = "vers=4.1,hard,timeo=600,retrans=2,_netdev"


def run(*command):
    """Run a command; ``(exit code, stdout, stderr)``."""
    proc = subprocess.run(command, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


class NFSTransport(Transport):
    kind = "mount"
    mounts_file = "/proc/self/mounts"

    def __init__(self, config, executor=run):
        super().__init__(config)
        self.execute = executor

    def mounted(self, mountpoint):
        """The source mounted at ``mountpoint``, or None."""
        mountpoint = os.path.realpath(mountpoint)
        try:
            with open(self.mounts_file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return None
        source = None
        for line in lines:
            fields = line.split()
            if len(fields) >= 3 and fields[1] == mountpoint:
                source = fields[0]       # the last mount on top counts
        return source

    def connect(self, properties):
        mountpoint = properties["mountpoint"]
        exports = properties.get("exports") or [properties["export"]]
        current = self.mounted(mountpoint)
        if current in exports:
            return mountpoint
        if current is not None:
            raise AttachFailed(f"{mountpoint} already has {current} mounted, "
                               "not this NAS volume")
        os.makedirs(mountpoint, exist_ok=True)
        options = properties.get("options") or DEFAULT_OPTIONS
        errors = []
        for export in exports:
            code, _out, err = self.execute("mount", "-t", "nfs", "-o",
                                           options, export, mountpoint)
            if code == 0:
                return mountpoint
            errors.append(f"{export}: {' '.join(err.split()) or code}")
        raise AttachFailed(f"cannot mount the NAS volume at {mountpoint}: "
                           + "; ".join(errors))

    def disconnect(self, properties):
        mountpoint = properties["mountpoint"]
        if self.mounted(mountpoint) is None:
            return
        code, _out, err = self.execute("umount", mountpoint)
        if code != 0:
            raise AttachFailed(f"cannot unmount {mountpoint}: "
                               f"{' '.join(err.split()) or code}")
