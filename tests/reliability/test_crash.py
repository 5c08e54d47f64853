"""Crash consistency: SIGKILL after each appliance change, then run again.

Every command is run with JDSS_CRASH_AFTER=k for k = 1, 2, ... until it
completes without reaching step k. After each crash the same command is
run again and must converge: the intended state holds, what existed
before is intact, and once the volume is detached again ``jdss cleanup``
finds nothing left over.
"""

import json
import os
import shutil
import signal
import subprocess

import pytest

from tests.agentproc import AgentProcess
from tests.conftest import (BACKENDS, FIRMWARES, jdss_command,
                            write_config)

OPERATIONS = {
    "create": (["volume", "create", "vm-200-disk-0", "--size", "1G"], None),
    "clone": (["volume", "clone", "vm-100-disk-0", "vm-201-disk-0"], None),
    "clone of a snapshot": (["volume", "clone", "vm-100-disk-0",
                             "vm-202-disk-0", "--snapshot", "s1"], None),
    "attach": (["volume", "attach", "vm-100-disk-0"],
               ["volume", "detach", "vm-100-disk-0"]),
    "snapshot attach": (["volume", "attach", "vm-100-disk-0",
                         "--snapshot", "s1"],
                        ["volume", "detach", "vm-100-disk-0",
                         "--snapshot", "s1"]),
    "snapshot": (["snapshot", "create", "vm-100-disk-0", "s3"], None),
    "rollback": (["snapshot", "rollback", "vm-100-disk-0", "s2"], None),
    "attach with CHAP": (["--set", "chap_enabled=true", "volume", "attach",
                          "vm-100-disk-0"],
                         ["--set", "chap_enabled=true", "volume", "detach",
                          "vm-100-disk-0"]),
}


def jdss(config, *args, crash_after=None):
    env = None
    if crash_after is not None:
        env = dict(os.environ, JDSS_CRASH_AFTER=str(crash_after))
    return subprocess.run([jdss_command(), "-c", str(config)] + list(args),
                          capture_output=True, text=True, timeout=120,
                          env=env)


class CrashingAgent(AgentProcess):
    """A jdss-agent of this test's own whose children die by SIGKILL at
    change ``step`` of the request they serve (JDSS_CRASH_AFTER in the
    agent's environment, which its children inherit)."""

    def __init__(self, directory, step):
        super().__init__(directory / "agent.sock",
                         env={"JDSS_CRASH_AFTER": str(step)})

    def run(self, argv):
        """The request's exit code; -SIGKILL when it was taken and its
        child died without an answer."""
        accepted, answer = self.exchange(argv, timeout=120)
        assert accepted
        return answer["exit"] if answer else -signal.SIGKILL


def crash(via, config, command, step, directory):
    """Run ``command`` to die after change ``step``: as a jdss process, or
    in a child of jdss-agent (which must outlive it)."""
    if via == "process":
        return jdss(config, *command, crash_after=step).returncode
    directory.mkdir(exist_ok=True)
    agent = CrashingAgent(directory, step)
    try:
        code = agent.run(["-c", str(config), *command])
    finally:
        assert agent.stop(), "the agent ended with its child"
    return code


def state(config):
    """Volumes with sizes and snapshots, and exported volume names."""
    volumes = json.loads(jdss(config, "volume", "list", "-f", "json").stdout)
    result = {}
    for volume in volumes:
        snaps = json.loads(jdss(config, "snapshot", "list", volume["name"],
                                "-f", "json").stdout)
        result[volume["name"]] = (volume["size"],
                                  sorted(s["name"] for s in snaps))
    return result


BASELINE = (["volume", "create", "vm-100-disk-0", "--size", "1G"],
            ["snapshot", "create", "vm-100-disk-0", "s1"],
            ["snapshot", "create", "vm-100-disk-0", "s2"])


class FakePools:
    """Copies of a fake pool holding vm-100-disk-0 with snapshots s1, s2."""

    def __init__(self, directory):
        self.baseline = directory
        config = self._config(directory)
        for args in BASELINE:
            assert jdss(config, *args).returncode == 0

    @staticmethod
    def _config(directory):
        return write_config(directory / "jdss.yaml",
                            transport="iscsi-direct")

    def fresh(self, directory):
        shutil.copytree(self.baseline / "state", directory / "state")
        return self._config(directory)

    def stop(self):
        pass


class RestPools:
    """The same pool behind a jdss-emulator of its own for every copy."""

    def __init__(self, directory, tls, options):
        from tests.emulator import Emulator
        self.tls, self.running, self.options = tls, [], options
        self.baseline = directory
        emulator = Emulator(str(directory), *tls, pools=("Pool-0",),
                            **options)
        try:
            config = self._config(directory, emulator)
            for args in BASELINE:
                assert jdss(config, *args).returncode == 0
        finally:
            emulator.stop()

    @staticmethod
    def _config(directory, emulator):
        return write_config(directory / "jdss.yaml",
                            **emulator.config(transport="iscsi-direct"))

    def fresh(self, directory):
        from tests.emulator import Emulator
        shutil.copytree(self.baseline / "emulator-state",
                        directory / "emulator-state",
                        ignore=shutil.ignore_patterns("requests.log",
                                                      "faults.json"))
        emulator = Emulator(str(directory), *self.tls, pools=("Pool-0",),
                            **self.options)
        self.running.append(emulator)
        return self._config(directory, emulator)

    def stop(self):
        for emulator in self.running:
            emulator.stop()
        self.running = []


@pytest.fixture(scope="module")
def pools(tmp_path_factory, tls_cert):
    made = {"fake": FakePools(tmp_path_factory.mktemp("fake-baseline"))}
    for backend, options in FIRMWARES.items():
        made[backend] = RestPools(tmp_path_factory.mktemp(backend),
                                  tls_cert, options)
    yield made
    for each in made.values():
        each.stop()


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("backend, via", [
    (backend, "process") for backend in BACKENDS] + [
    ("fake", "agent"), ("joviandss", "agent")])
def test_rerun_after_a_crash_converges(backend, via, operation, pools,
                                       tmp_path, scenario):
    command, undo = OPERATIONS[operation]
    copies = pools[backend]
    clean_config = copies.fresh(tmp_path / "clean")
    assert jdss(clean_config, *command).returncode == 0
    if undo:
        assert jdss(clean_config, *undo).returncode == 0
    expected = state(clean_config)

    for step in range(1, 10):
        config = copies.fresh(tmp_path / f"step{step}")
        crashed = crash(via, config, command, step, tmp_path / "agent")
        if crashed == 0:
            break                       # the command has fewer steps
        assert crashed == -signal.SIGKILL, (via, step, crashed)
        rerun = jdss(config, *command)
        converged = rerun.returncode == 0 or (
            rerun.returncode == 5 and command[1] in ("create", "clone"))
        if undo:
            converged &= jdss(config, *undo).returncode == 0
        leftovers = json.loads(jdss(config, "cleanup", "--dry-run", "-f",
                                    "json").stdout)
        final = state(config)
        lost = sum(1 for name, (size, snaps) in expected.items()
                   if name not in final or final[name][0] != size
                   or not set(snaps) <= set(final[name][1]))
        scenario(f"{backend}: crash after each step: {operation}"
                 + (" (in jdss-agent)" if via == "agent" else ""),
                 failed=not converged or final != expected or leftovers,
                 lost=lost)
        assert converged, (step, rerun.stderr)
        assert leftovers == [], (step, leftovers)
        assert final == expected, step
    else:
        pytest.fail(f"{operation} did not finish within 9 steps")
    copies.stop()
    assert step > 1, f"{operation} was never interrupted"
