"""The REST password never shows: process arguments, environment, output.

jdss runs against an emulator that answers slowly, so the running process
(and any child it has) can be read from /proc while it works, as ``ps``
would; its output is read at every log level, on failures and after a
SIGKILL.
"""

import os
import subprocess
import time

import pytest

from tests.conftest import jdss_command, write_config
from tests.emulator import PASSWORD, Emulator


@pytest.fixture
def slow_appliance(tmp_path, tls_cert):
    emulator = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",))
    yield emulator
    emulator.stop()


def descendants(pid):
    children = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(c) for c in handle.read().split()]
    except OSError:
        return []
    return children + [d for c in children for d in descendants(c)]


def exposed(pid):
    """Arguments and environment of ``pid`` and its children, as bytes."""
    seen = b""
    for each in [pid] + descendants(pid):
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{each}/{part}", "rb") as handle:
                    seen += handle.read()
            except OSError:
                pass
    return seen


@pytest.mark.parametrize("where", ["password file", "YAML file"])
def test_password_never_visible(slow_appliance, tmp_path, scenario, where):
    values = slow_appliance.config()
    if where == "YAML file":
        del values["rest_api_password_file"]
        values["rest_api_password"] = PASSWORD
    config = write_config(tmp_path / "rest.yaml", **values)
    os.chmod(config, 0o600)
    runs = [["-v", "-v", "--debug", "volume", "list"],
            ["--debug", "volume", "create", "vm-1-disk-0", "--size", "1G"],
            ["--debug", "--set", "driver_ssl_cert_path=/dev/null", "pool",
             "show"],                                     # TLS failure
            ["--debug", "volume", "show", "nope"]]        # not found
    slow_appliance.faults({"action": "delay", "seconds": 1})
    leaks = []
    for args in runs:
        proc = subprocess.Popen([jdss_command(), "-c", str(config)] + args,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        time.sleep(0.5)
        seen = exposed(proc.pid)
        out, err = proc.communicate(timeout=60)
        if PASSWORD.encode() in seen + out + err:
            leaks.append(args)
    slow_appliance.faults()
    crashed = subprocess.run(
        [jdss_command(), "-c", str(config), "--debug", "volume", "create",
         "vm-2-disk-0", "--size", "1G"], capture_output=True, timeout=60,
        env=dict(os.environ, JDSS_CRASH_AFTER="1"))
    if PASSWORD.encode() in crashed.stdout + crashed.stderr:
        leaks.append("crash")
    scenario(f"password never in ps, environment or output ({where})",
             failed=bool(leaks))
    assert crashed.returncode == -9
    assert not leaks, leaks
