"""Running real host tools on a throw-away view of this machine.

``run(script)`` runs a bash script as root in a private mount namespace
where /etc is an overlay (writes vanish with the namespace), /run and /dev
are empty tmpfs (with /dev/null and friends), so multipath, LVM and udev
read configuration the tests install and leave nothing behind. Loop
devices made with ``loop_device`` are detached in any case.
"""

import contextlib
import os
import shutil
import subprocess

import pytest

PRELUDE = r"""
set -euo pipefail
sandbox=$(mktemp -d)
mount -t tmpfs jdss-sandbox "$sandbox"
mkdir "$sandbox/up" "$sandbox/work" "$sandbox/etc" "$sandbox/dev" "$sandbox/run"
mount -t overlay overlay \
    -o "lowerdir=/etc,upperdir=$sandbox/up,workdir=$sandbox/work" "$sandbox/etc"
mount --bind "$sandbox/etc" /etc
for node in null zero full random urandom; do cp -a "/dev/$node" "$sandbox/dev/"; done
for node in ${SANDBOX_DEVICES:-}; do cp -a "$node" "$sandbox/dev/"; done
ln -s /proc/self/fd "$sandbox/dev/fd"
mkdir -p "$sandbox/run/lock/lvm" "$sandbox/run/lvm"
mount --bind "$sandbox/dev" /dev
mount --bind "$sandbox/run" /run
export LVM_SUPPRESS_FD_WARNINGS=1
"""


def available():
    """Why the sandbox cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces)"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    return None


def require(*tools):
    """Skip the test unless the sandbox and ``tools`` are there."""
    reason = available()
    if reason is None:
        missing = [t for t in tools if shutil.which(t) is None and
                   shutil.which(t, path="/usr/sbin:/sbin") is None]
        if missing:
            reason = (f"needs {', '.join(missing)} (make test installs "
                      "them as root)")
    if reason:
        pytest.skip(reason)


def run(script, env=None, devices=(), timeout=120):
    """Run ``script`` in the sandbox; returns the CompletedProcess."""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c",
         PRELUDE + script],
        capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, SANDBOX_DEVICES=" ".join(devices),
                 **(env or {})))


@contextlib.contextmanager
def loop_device(directory, size=64 << 20):
    """A loop device over a sparse file in ``directory`` (``loop.img``,
    kept as it is if ``size`` is None); detached and removed after."""
    image = os.path.join(directory, "loop.img")
    if size is not None:
        with open(image, "wb") as handle:
            handle.truncate(size)
    device = subprocess.run(["losetup", "--find", "--show", image],
                            capture_output=True, text=True, check=True,
                            timeout=30).stdout.strip()
    try:
        yield device
    finally:
        attached = subprocess.run(["losetup", "--associated", image],
                                  capture_output=True, text=True,
                                  timeout=30).stdout
        for line in attached.splitlines():
            subprocess.run(["losetup", "--detach", line.split(":")[0]],
                           timeout=30)
        os.unlink(image)
