"""Concurrent jdss processes never lose an update of the fake pool."""

import json
import subprocess

from tests.conftest import jdss_command

PROCESSES = 16


def _spawn(config, *args):
    return subprocess.Popen([jdss_command(), "-c", str(config)] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait(procs):
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    return results


def test_parallel_creates_all_land(config_file, run_jdss):
    procs = [_spawn(config_file, "volume", "create", f"vm-{100 + i}-disk-0",
                    "--size", "1G", "--thick") for i in range(PROCESSES)]
    assert all(code == 0 for code, _, _ in _wait(procs))
    volumes = json.loads(run_jdss("volume", "list", "-f", "json").out)
    assert sorted(v["name"] for v in volumes) == sorted(
        f"vm-{100 + i}-disk-0" for i in range(PROCESSES))
    pool = json.loads(run_jdss("pool", "show", "-f", "json").out)
    assert pool["used"] == PROCESSES << 30


def test_parallel_duplicates_create_exactly_one(config_file, run_jdss):
    procs = [_spawn(config_file, "volume", "create", "vm-100-disk-0",
                    "--size", f"{i + 1}G") for i in range(8)]
    codes = sorted(code for code, _, _ in _wait(procs))
    assert codes == [0] + [5] * 7
    volumes = json.loads(run_jdss("volume", "list", "-f", "json").out)
    assert len(volumes) == 1


def test_parallel_snapshots_of_one_volume(config_file, run_jdss):
    assert run_jdss("volume", "create", "v", "--size", "1G").code == 0
    procs = [_spawn(config_file, "snapshot", "create", "v", f"s{i}")
             for i in range(PROCESSES)]
    assert all(code == 0 for code, _, _ in _wait(procs))
    snaps = json.loads(run_jdss("snapshot", "list", "v", "-f", "json").out)
    assert sorted(s["name"] for s in snaps) == sorted(
        f"s{i}" for i in range(PROCESSES))
