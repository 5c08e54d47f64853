"""Serialising changes to one volume among the jdss processes of a node.

Proxmox holds its cluster-wide storage lock around the plugin's calls, so
nodes never race each other. These locks cover jdss run by hand or by
scripts on one node, where a check and the change it allows (a resize only
grows, a rollback only goes to the newest snapshot) must not interleave
with another change of the same volume. They are advisory flocks on files
under /run/lock; a lock ends with its process, crash or not.
"""

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile


def lock_dir():
    base = "/run/lock" if os.access("/run/lock", os.W_OK) \
        else tempfile.gettempdir()
    path = os.path.join(base, f"jdss-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def lock_path(pool, name):
    """The lock file of volume ``name`` of ``pool`` (any name is safe)."""
    key = f"{pool}/{name}"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:80]
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape"))
    return os.path.join(lock_dir(), f"{safe}.{digest.hexdigest()[:12]}")


@contextlib.contextmanager
def volume_lock(pool, name):
    """Hold this node's lock of volume ``name`` of ``pool``."""
    handle = os.open(lock_path(pool, name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)
