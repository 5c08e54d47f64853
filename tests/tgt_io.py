"""What the tests against a real tgtd share: the tools they need, jdss run
as a process on a config file, and QEMU's initiator reading and writing
blocks through an iscsi:// URL."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import jdss_command

TOOLS = ("tgtd", "tgtadm", "qemu-io", "iscsi-ls")
MB = 1 << 20


def skip_without_tools():
    """Skip the calling module where the tools are missing (not on CI,
    where make test installs them)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None
               and not os.path.exists(f"/usr/sbin/{tool}")]
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"needs {', '.join(missing)} (make test installs them "
                    "on CI)", allow_module_level=True)


def jdss(config, *args, check=True):
    proc = subprocess.run([jdss_command(), "-c", str(config)] + list(args),
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, (args, proc.stderr)
    return proc


def attach(config, name, *extra):
    """Attach ``name``: the path (here an iscsi:// URL) a VM would get."""
    return jdss(config, "volume", "attach", name, *extra, "-f", "value",
                "-c", "path").stdout.strip()


def qemu_io(url, command, read_only=False):
    return subprocess.run(["qemu-io", "-f", "raw"]
                          + (["-r"] if read_only else [])
                          + ["-c", command, url],
                          capture_output=True, text=True, timeout=120)


def pattern_at(url, byte, offset=0, length=MB):
    """Whether ``length`` bytes at ``offset`` of ``url`` are all ``byte``."""
    result = qemu_io(url, f"read -P {byte:#x} {offset} {length}",
                     read_only=True)
    return result.returncode == 0 and "Pattern verification failed" \
        not in result.stdout + result.stderr
