"""One change of a volume at a time: across the cluster, else on the node.

A check and the change it allows (a resize only grows, a rollback destroys
only what was accepted, an export is removed only when no node uses it)
must not interleave with another change of the same volume, from this
node or another, and Proxmox itself locks only allocation, free, clone,
template and rename. So jdss locks every change of a volume:

* on a Proxmox node (``/etc/pve/priv/lock`` exists), with Proxmox's own
  cluster-wide lock: a directory made in pmxcfs's ``priv/lock/`` (mkdir
  is atomic across the cluster), retried until a timeout and removed when
  done. pmxcfs drops a lock older than 120 s when another process asks
  for it (an "unlock request"), so a holder refreshes its lock while it
  works, and a node that died with a lock holds it at most that long. In
  a directory that is not pmxcfs (tests), jdss applies the same expiry;
* elsewhere, with an flock on a file in a directory only root can use
  (``/run/jdss``, checked with lstat: a directory, ours, mode 0700, not a
  symlink), opened with O_NOFOLLOW; it ends with its process, crash or
  not.

Every wait is bounded (``lock_timeout``) and ends with a clear error.
"""

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import threading
import time

from jdss import errors

CLUSTER_EXPIRY = 120.0      # seconds, as pmxcfs
REFRESH_EVERY = 30.0
NODE_LOCK_DIR = "/run/jdss"


def lock_dir():
    """The node's root-only lock directory, made and checked."""
    if os.geteuid() == 0:
        path = NODE_LOCK_DIR
    else:
        base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
        path = os.path.join(base, f"jdss-{os.geteuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() \
            or info.st_mode & 0o077:
        raise errors.ConfigError(
            f"{path} is not a directory of user {os.geteuid()} with mode "
            "0700 (a symlink, or made by someone else?); remove it so that "
            "jdss can make its own")
    return path


def _key(pool, name):
    """A file-name-safe, unique key of volume ``name`` of ``pool``."""
    key = f"{pool}/{name}"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:60]
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape"))
    return f"{safe}.{digest.hexdigest()[:12]}"


def lock_path(pool, name):
    """The node lock file of volume ``name`` of ``pool``."""
    return os.path.join(lock_dir(), _key(pool, name))


def cluster_lock_dir():
    """pmxcfs's lock directory on a Proxmox node, else None."""
    from jdss.pvecfg import pve_root
    path = os.path.join(pve_root(), "priv", "lock")
    return path if os.path.isdir(path) else None


@contextlib.contextmanager
def volume_lock(config, name, what=None, timeout=None):
    """Hold the lock of volume ``name`` of ``config``'s pool, waiting at
    most ``timeout`` seconds (default ``lock_timeout``; 0: one try).

    The caller validates ``name`` first: no lock is made for a name jdss
    refuses.
    """
    what = what or f"volume {name!r}"
    timeout = config.lock_timeout if timeout is None else timeout
    cluster = cluster_lock_dir()
    if cluster is not None:
        path = os.path.join(cluster, "jdss-" + _key(config.pool, name))
        with _cluster_lock(path, timeout, what):
            yield
    else:
        with _node_lock(lock_path(config.pool, name), timeout, what):
            yield


@contextlib.contextmanager
def volume_locks(config, names):
    """The locks of several volumes of ``config``'s pool, taken in one
    order (by name), so that two processes after the same two never hold
    one each and wait for the other."""
    with contextlib.ExitStack() as stack:
        for name in sorted(set(names)):
            stack.enter_context(volume_lock(config, name))
        yield


def nas_lock(config, name, timeout=None):
    """The lock of NAS volume ``name`` (a key of its own: a volume and a
    NAS volume of one name are two things)."""
    return volume_lock(config, f"nas/{name}", f"NAS volume {name!r}",
                       timeout)


def _busy(what, timeout, where):
    return errors.Busy(f"{what} is being changed by another jdss "
                       f"{where}; gave up waiting after {timeout:g} s")


@contextlib.contextmanager
def _node_lock(path, timeout, what):
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise errors.ConfigError(f"cannot use lock file {path}: "
                                 f"{exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(what, timeout, "process of this node") \
                        from None
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
        yield
    finally:
        os.close(handle)


def _on_pmxcfs(path):
    """Whether ``path`` is in a FUSE file system (pmxcfs)."""
    best, fstype = "", None
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and (path + "/").startswith(
                    fields[1].rstrip("/") + "/") and len(fields[1]) > len(best):
                best, fstype = fields[1], fields[2]
    return fstype is not None and fstype.startswith("fuse")


def _unlock_request(path, pmxcfs):
    """Ask for a stale lock to be dropped, as pmxcfs clients do."""
    try:
        if pmxcfs:
            os.utime(path, (0, 0))
        elif time.time() - os.stat(path).st_mtime > CLUSTER_EXPIRY:
            os.rmdir(path)               # what pmxcfs would do
    except OSError:
        pass


@contextlib.contextmanager
def _cluster_lock(path, timeout, what):
    pmxcfs = _on_pmxcfs(path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.mkdir(path)
            break
        except FileExistsError:
            if time.monotonic() >= deadline:
                raise _busy(what, timeout, "process (this or another node)") \
                    from None
            _unlock_request(path, pmxcfs)
            time.sleep(0.2)
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise errors.Busy(f"cannot lock {what}: the cluster file "
                                  "system is read-only (no quorum?)") \
                    from None
            raise errors.ConfigError(f"cannot lock {what} in {path}: "
                                     f"{exc.strerror}") from None
    stop = threading.Event()
    refresher = threading.Thread(target=_refresh, args=(path, stop),
                                 daemon=True)
    refresher.start()
    try:
        yield
    finally:
        stop.set()
        refresher.join()
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _refresh(path, stop):
    """Keep a held cluster lock younger than the expiry."""
    while not stop.wait(REFRESH_EVERY):
        with contextlib.suppress(OSError):
            os.utime(path)
