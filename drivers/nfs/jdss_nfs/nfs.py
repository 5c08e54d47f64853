"""``nfs``: mounts a NAS volume's share at a directory.

Tries the share's exports in order (one per appliance address) and keeps
the first that mounts. Mounting an already mounted export is a no-op,
once the mount has answered within ``probe_timeout`` seconds: a mount that
hangs (the appliance is gone) is reported, a stale one (the share was
made again) is replaced. Unmounting a directory that holds nothing is a
no-op too.
"""

import errno
import logging
import os
import signal
import subprocess
import time

from jdss.errors import AttachFailed
from jdss.transport import Transport

LOG = logging.getLogger(__name__)
DEFAULT_OPTIONS = "vers=4.1,hard,timeo=600,retrans=2,_netdev"


def run(*command):
    """Run a command; ``(exit code, stdout, stderr)``."""
    proc = subprocess.run(command, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def stat_errno(path, timeout):
    """0 when ``path`` can be stat'ed, else the errno; None when it gave no
    answer within ``timeout`` seconds. The stat runs in a child process,
    killed when it hangs: a hung mount never holds the caller. A statvfs
    follows the stat: the kernel may answer a stat from its attribute
    cache, never a statvfs, which asks the server."""
    pid = os.fork()
    if pid == 0:                                     # pragma: no cover
        try:
            os.stat(path)
            os.statvfs(path)
            code = 0
        except OSError as exc:
            code = min(exc.errno or 255, 255)
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) \
                if os.WIFEXITED(status) else errno.EIO
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):             # killable waits end at once
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.01)
            return None
        time.sleep(0.02)


def mount_path(mountpoint):
    """``mountpoint`` as the mount table names it. Only the parent
    directory is resolved: the mount point itself is never touched (a hung
    mount would hold the caller)."""
    head, tail = os.path.split(os.path.abspath(mountpoint))
    return os.path.join(os.path.realpath(head), tail)


def mount_entry(table, column, mountpoint):
    """The fields of the mount at ``mountpoint`` in mount table file
    ``table`` (the mount point in field ``column``), or None."""
    mountpoint = mount_path(mountpoint)
    try:
        with open(table, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    found = None
    for fields in map(str.split, lines):
        if len(fields) > column and fields[column] == mountpoint:
            found = fields               # the last mount on top counts
    return found


class NFSTransport(Transport):
    kind = "mount"
    mounts_file = "/proc/self/mounts"
    #: seconds a mounted share has to answer
    probe_timeout = 5.0

    def __init__(self, config, executor=run):
        super().__init__(config)
        self.execute = executor

    def mounted(self, mountpoint):
        """The source mounted at ``mountpoint``, or None."""
        entry = mount_entry(self.mounts_file, 1, mountpoint)
        return entry[0] if entry else None

    def holds(self, mountpoint, source, properties):
        """Whether ``source``, mounted at ``mountpoint``, is this share."""
        exports = properties.get("exports") or [properties["export"]]
        return source in exports

    def mount(self, export, mountpoint, options):
        """Mount one export; ``(exit code, error text)``."""
        code, _out, err = self.execute("mount", "-t", "nfs", "-o", options,
                                       export, mountpoint)
        return code, err

    def probe(self, mountpoint):
        """``ok`` or ``stale``; raises when the mount does not answer."""
        found = stat_errno(mountpoint, self.probe_timeout)
        if found is None:
            raise AttachFailed(
                f"the share mounted at {mountpoint} does not answer within "
                f"{self.probe_timeout:g} s: is the appliance reachable at "
                "its data addresses? (umount -f -l "
                f"{mountpoint} gives the directory back)")
        return "stale" if found == errno.ESTALE else "ok"

    def is_attached(self, properties):
        mountpoint = properties["mountpoint"]
        current = self.mounted(mountpoint)
        return current is not None and \
            self.probe(mountpoint) == "ok" and \
            self.holds(mountpoint, current, properties)

    def connect(self, properties):
        mountpoint = properties["mountpoint"]
        exports = properties.get("exports") or [properties["export"]]
        current = self.mounted(mountpoint)
        if current is not None:
            state = self.probe(mountpoint)
            if not self.holds(mountpoint, current, properties):
                raise AttachFailed(f"{mountpoint} already has {current} "
                                   "mounted, not this NAS volume")
            if state == "ok":
                return mountpoint
            LOG.warning("%s: stale mount of %s replaced", mountpoint,
                        current)
            self._unmount(mountpoint, "-l")
        os.makedirs(mountpoint, exist_ok=True)
        options = properties.get("options") or DEFAULT_OPTIONS
        errors = []
        for export in exports:
            code, err = self.mount(export, mountpoint, options)
            if code == 0:
                return mountpoint
            errors.append(f"{export}: {' '.join(err.split()) or code}")
        raise AttachFailed(f"cannot mount the NAS volume at {mountpoint}: "
                           + "; ".join(errors))

    def disconnect(self, properties):
        mountpoint = properties["mountpoint"]
        if self.mounted(mountpoint) is None:
            return
        self._unmount(mountpoint)

    def _unmount(self, mountpoint, *flags):
        code, _out, err = self.execute("umount", *flags, mountpoint)
        if code != 0:
            raise AttachFailed(f"cannot unmount {mountpoint}: "
                               f"{' '.join(err.split()) or code}")
