"""make bench still runs: every section once, at a small scale.

The figures of a --quick run mean nothing and are not looked at (timing
belongs to the benchmark, not to the tests); what is checked is that each
section ran through the real PVE::Storage and the plugin without errors,
and that the REST counts the README states are what the plugin makes.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pve_sources():
    """Where tests/perl/lib/RealPVE.pm finds Proxmox's storage code."""
    return os.path.isfile("/usr/share/perl5/PVE/Storage.pm") or any(
        glob.glob(os.path.join(directory, "pve-storage-*", "src"))
        for directory in (os.environ.get("JDSS_PVE_SOURCES"),
                          os.path.join(ROOT, "..", "shared", "pve"))
        if directory)


@pytest.mark.skipif(not pve_sources(), reason="no Proxmox VE storage code")
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("tgtd"),
                    reason="the boot section needs root and tgtd")
def test_quick_bench(tmp_path):
    output = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick",
         "--output", str(output)], capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(output.read_text())
    ops = results["long_lived"]["ops"]
    assert set(ops["storage_info"]) == {"fake agent", "fake process",
                                        "rest agent", "rest process"}
    # the counts the README states, at most the vendor's
    requests = {label: row["agent"] for label, row in
                results["long_lived"]["requests"].items()}
    assert requests["storage_info"] == 1
    assert requests["vdisk_list, 10 volumes"] == 2
    assert requests["vdisk_list, 200 volumes"] == 3
    assert requests["volume_size_info"] == 1
    assert requests["volume_resize"] == 2
    assert requests["vdisk_alloc"] <= 12
    assert requests["vdisk_free"] <= 8
    assert requests["volume_snapshot"] <= 17
    # the same requests with the agent and without it
    assert all(row["agent"] == row["process"]
               for row in results["long_lived"]["requests"].values())
    for backend, row in results["concurrent"].items():
        assert row["errors"] == 0, (backend, row["error_lines"])
    boot = results["boot"]
    assert boot["errors"] == 0, boot["error_lines"]
    assert boot["targets_created"] == boot["guests"] * boot["disks"]
    assert boot["tgtd_targets"] == boot["guests"] * boot["disks"]
    assert boot["targets_created_on_restart"] == 0
    for label, row in results["outages"].items():
        assert row["reported_active"] == 0, label
    assert results["nodes"]["churn_errors"] == 0
    assert all(row["inactive"] == 0
               for row in results["nodes"]["nodes"].values())
