"""The jdss command, in-process and as a real process."""

import json
import os

import pytest

from jdss import errors


def test_lifecycle_in_process(cli):
    assert cli("volume", "create", "vm-100-disk-0", "--size", "1G").code == 0
    shown = cli("volume", "show", "vm-100-disk-0", "-f", "json").json()
    assert shown["size"] == 1 << 30
    assert shown["appliance_name"] == "v_vm-100-disk-0"
    listed = cli("volume", "list", "-f", "json").json()
    assert [v["name"] for v in listed] == ["vm-100-disk-0"]
    assert cli("snapshot", "create", "vm-100-disk-0", "s1").code == 0
    assert cli("snapshot", "create", "vm-100-disk-0", "s2").code == 0
    blocked = cli("snapshot", "rollback", "vm-100-disk-0", "s1")
    assert blocked.code == errors.RollbackBlocked.exit_code
    assert "s2" in blocked.err
    dry = cli("snapshot", "rollback", "vm-100-disk-0", "s1", "--dry-run",
              "-f", "json").json()
    assert dry == {"volume": "vm-100-disk-0", "snapshot": "s1",
                   "blockers": ["s2"], "clones": [], "possible": False}
    forced = cli("snapshot", "rollback", "vm-100-disk-0", "s1", "--force",
                 "-f", "json").json()
    assert forced["destroyed"] == ["s2"]
    clone = cli("volume", "clone", "vm-100-disk-0", "vm-101-disk-0",
                "--snapshot", "s1", "-f", "json").json()
    assert clone["origin"] == "vm-100-disk-0@s1"
    assert cli("volume", "resize", "vm-100-disk-0", "--size", "2G", "-f",
               "value", "-c", "size").out.strip() == str(2 << 30)
    renamed = cli("volume", "rename", "vm-101-disk-0", "vm-102-disk-0",
                  "-f", "json").json()
    assert renamed["name"] == "vm-102-disk-0"
    export = cli("target", "create", "vm-100-disk-0", "-f", "json").json()
    assert export["target"] == "iqn.2021-10.iscsi:pool-0:vm-100-disk-0"
    assert cli("target", "show", "vm-100-disk-0", "-f", "json").json() == \
        export
    assert cli("target", "delete", "vm-100-disk-0").code == 0
    assert cli("volume", "delete", "vm-102-disk-0").code == 0
    assert cli("volume", "delete", "vm-100-disk-0", "--recursive").code == 0
    assert cli("volume", "list", "-f", "json").json() == []


LISTS = (("volume", "list"), ("snapshot", "list", "vm-1-disk-0"),
         ("nas-volume", "list"), ("share", "list"), ("driver", "list"))
SHOWS = (("pool", "show"), ("volume", "show", "vm-1-disk-0"))


@pytest.mark.parametrize("fmt", ["json", "yaml", "table", "value", "csv"])
def test_every_format(cli, fmt):
    cli("volume", "create", "vm-1-disk-0", "--size", "16K")
    for args in LISTS + (SHOWS if fmt != "csv" else ()):
        result = cli(*args, "-f", fmt)
        assert result.code == 0, (args, result.err)
        assert result.out.strip() or args[0] in ("nas-volume", "share",
                                                 "snapshot")


def test_column_option_does_not_clash_with_config(cli):
    cli("volume", "create", "v", "--size", "1G")
    result = cli("volume", "show", "v", "-f", "value", "-c", "size")
    assert result.out.strip() == str(1 << 30)


def test_sizes_in_json_are_bytes(cli):
    cli("volume", "create", "v", "--size", "3M", "--thick", "--block-size",
        "1M")
    shown = cli("volume", "show", "v", "-f", "json").json()
    assert shown["size"] == 3 << 20 and shown["thin"] is False
    assert shown["block_size"] == "1M"
    assert cli("pool", "show", "-f", "json").json()["used"] == 3 << 20


def test_nas_and_share_commands(cli):
    created = cli("nas-volume", "create", "proxmox-content", "--size", "10G",
                  "-f", "json").json()
    assert created["quota"] == 10 << 30
    share = cli("share", "create", "proxmox-content", "-f", "json").json()
    assert share["path"] == "Pool-0/proxmox-content"
    assert [s["name"] for s in cli("share", "list", "-f", "json").json()] \
        == ["proxmox-content"]
    assert cli("share", "delete", "proxmox-content").code == 0
    assert cli("nas-volume", "delete", "proxmox-content").code == 0
    assert cli("nas-volume", "list", "-f", "json").json() == []


@pytest.mark.parametrize("args, error", [
    (("volume", "show", "nope"), errors.NotFound),
    (("volume", "create", "bad/name", "--size", "1G"), errors.InvalidInput),
    (("volume", "create", "ok", "--size", "-5"), errors.InvalidInput),
    (("volume", "create", "ok", "--size", "1G", "--block-size", "3K"),
     errors.InvalidInput),
    (("volume", "create", "huge", "--size", "1P", "--thick"), errors.NoSpace),
    (("snapshot", "delete", "nope", "s"), errors.NotFound),
    (("target", "show", "nope"), errors.NotFound),
])
def test_errors_exit_with_their_code_and_one_line(cli, args, error):
    result = cli(*args)
    assert result.code == error.exit_code
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jdss: error: ")
    assert "Traceback" not in result.err
    assert cli("volume", "list", "-f", "json").json() == []


def test_duplicate_exits_with_exists(cli):
    cli("volume", "create", "v", "--size", "1G")
    result = cli("volume", "create", "v", "--size", "2G")
    assert result.code == errors.AlreadyExists.exit_code
    assert cli("volume", "show", "v", "-f", "json").json()["size"] == 1 << 30


def test_busy_exit_code(cli):
    cli("volume", "create", "v", "--size", "1G")
    cli("snapshot", "create", "v", "s")
    assert cli("volume", "delete", "v").code == errors.Busy.exit_code


def test_config_errors(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: fake\nrest_api_port: 99999\n")
    result = cli("pool", "show", config=bad)
    assert result.code == errors.ConfigError.exit_code
    assert "rest_api_port" in result.err and str(bad) in result.err
    result = cli("pool", "show", config=tmp_path / "missing.yaml")
    assert result.code == errors.ConfigError.exit_code
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("backend: nosuch\n")
    result = cli("pool", "show", config=unknown)
    assert result.code == errors.ConfigError.exit_code
    assert "no jdss.backends driver named 'nosuch'" in result.err
    assert "fake" in result.err


def test_debug_shows_traceback(cli):
    result = cli("--debug", "volume", "show", "nope")
    assert result.code == errors.NotFound.exit_code
    assert "Traceback" in result.err


def test_pool_option_overrides_config(cli):
    cli("--pool", "Pool-1", "volume", "create", "v", "--size", "1G")
    assert cli("volume", "list", "-f", "json").json() == []
    assert cli("--pool", "Pool-1", "pool", "show", "-f",
               "json").json()["name"] == "Pool-1"


def test_help_lists_every_command(cli):
    result = cli("help")
    for command in ("pool show", "volume create", "volume clone",
                    "snapshot rollback", "target create", "nas-volume list",
                    "share create", "driver list"):
        assert command in result.out


def test_subprocess_exit_codes_and_streams(run_jdss):
    created = run_jdss("volume", "create", "vm-100-disk-0", "--size", "1G",
                       "-f", "json")
    assert created.code == 0, created.err
    assert json.loads(created.out)["name"] == "vm-100-disk-0"
    missing = run_jdss("volume", "show", "vm-999-disk-0")
    assert missing.code == 4
    assert missing.err == "jdss: error: volume 'vm-999-disk-0' not found\n"
    usage = run_jdss("volume", "create", "x")
    assert usage.code == 2 and "--size" in usage.err


def test_no_command_prints_help_without_waiting(run_jdss):
    with open(os.devnull) as devnull:
        result = run_jdss(stdin=devnull)
    assert result.code == 0 and "volume create" in result.out


def test_version(run_jdss):
    import jdss
    result = run_jdss("--version")
    assert result.code == 0
    assert jdss.__version__ in result.out + result.err


def test_python_m_jdss(config_file):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "jdss", "-c",
                           str(config_file), "pool", "show", "-f", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["name"]


def test_json_output_loads_only_its_formatter(config_file):
    from tests.conftest import modules_after
    loaded = modules_after("-c", str(config_file), "pool", "show", "-f",
                           "json")
    assert "cliff.formatters.json_format" in loaded
    assert not loaded & {"cliff.formatters.table", "prettytable",
                         "wcwidth"}
    table = modules_after("-c", str(config_file), "pool", "show")
    assert "cliff.formatters.table" in table


def test_formatter_options_and_errors_unchanged(cli, run_jdss):
    cli("volume", "create", "v", "--size", "1G")
    assert "--max-width" in cli("help", "volume", "list").out
    assert cli("volume", "list", "--max-width", "40").code == 0
    bad = run_jdss("volume", "list", "-f", "nope")
    assert bad.code == 2 and "invalid choice: 'nope'" in bad.err


def test_commands_do_not_scan_every_distribution(cli, monkeypatch):
    """cliff's "provided by the X plugin" lookup reads the metadata of all
    installed packages on every call; jdss's own commands skip it."""
    import cliff.command

    def scan():
        raise AssertionError("packages_distributions() was called")

    monkeypatch.setattr(cliff.command, "packages_distributions", scan,
                        raising=False)
    monkeypatch.setattr(cliff.command, "_dists_by_mods", None,
                        raising=False)
    assert cli("pool", "show", "-f", "json").code == 0
    assert cli("volume", "list").code == 0


def test_attach_without_iscsiadm_says_what_to_install(run_jdss, tmp_path):
    assert run_jdss("volume", "create", "vm-1-disk-0", "--size", "1G").code \
        == 0
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_jdss("volume", "attach", "vm-1-disk-0",
                      env={"PATH": str(empty)})
    assert result.code == 12
    assert result.err == ("jdss: error: iscsiadm not found: install "
                          "open-iscsi (apt install open-iscsi) on this "
                          "node\n")
    assert run_jdss("target", "show", "vm-1-disk-0").code == 4  # undone


def test_console_shows_library_records_only_when_verbose():
    import logging
    from jdss import log

    def record(name):
        return logging.LogRecord(name, logging.WARNING, __file__, 1, "m",
                                 None, None)

    assert log.own_records_only(record("jdss.storage"))
    assert log.own_records_only(record("jdss_iscsi.iscsi"))
    assert not log.own_records_only(record("os_brick.initiator"))
    assert not log.own_records_only(record("oslo_utils.excutils"))


def test_guest_names_the_next_free_disk(cli):
    assert cli("volume", "create", "vm-100-disk-0", "--size", "1G").code == 0
    made = cli("volume", "create", "--guest", "100", "--size", "1G",
               "-f", "json")
    assert made.code == 0 and made.json()["name"] == "vm-100-disk-1"
    clone = cli("volume", "clone", "vm-100-disk-0", "--guest", "101",
                "-f", "json")
    assert clone.code == 0 and clone.json()["name"] == "vm-101-disk-0"
    renamed = cli("volume", "rename", "vm-100-disk-1", "--guest", "101",
                  "-f", "json")
    assert renamed.code == 0 and renamed.json()["name"] == "vm-101-disk-1"


@pytest.mark.parametrize("args", [
    ("volume", "create", "--size", "1G"),
    ("volume", "create", "vm-1-disk-0", "--guest", "1", "--size", "1G"),
    ("volume", "clone", "vm-1-disk-0"),
    ("volume", "rename", "vm-1-disk-0", "vm-1-disk-1", "--guest", "1")])
def test_a_new_name_or_guest_one_of_them(cli, args):
    result = cli(*args)
    assert result.code == 2
    assert "or --guest VMID, one of them" in result.err


def test_guest_takes_the_next_name_when_one_is_taken_meanwhile(
        cli, monkeypatch):
    """Another node makes vm-100-disk-0 after the listing: the appliance
    refuses it and the next free name is used."""
    from jdss.storage import Storage
    assert cli("volume", "create", "vm-100-disk-0", "--size", "1G").code == 0
    listed = Storage.list_volumes
    listings = []

    def listing(self):
        views = listed(self)
        listings.append(views)
        if len(listings) == 1:       # the first: before the other node's
            return [v for v in views if v["name"] != "vm-100-disk-0"]
        return views

    monkeypatch.setattr(Storage, "list_volumes", listing)
    made = cli("volume", "create", "--guest", "100", "--size", "1G",
               "-f", "json")
    assert made.code == 0 and made.json()["name"] == "vm-100-disk-1"
    assert len(listings) == 2
    monkeypatch.undo()
    names = cli("volume", "list", "-f", "json").json()
    assert [v["name"] for v in names] == ["vm-100-disk-0", "vm-100-disk-1"]


def test_guest_reports_a_refusal_the_listing_does_not_explain(cli):
    """A NAS volume holds the appliance name of the next disk (one ZFS
    namespace): the same name comes back free, so its error is reported
    at once instead of retried."""
    assert cli("nas-volume", "create", "v_vm-5-disk-0", "--size",
               "1G").code == 0
    made = cli("volume", "create", "--guest", "5", "--size", "1G")
    assert made.code == errors.AlreadyExists.exit_code
    assert "times running" not in made.err
    assert "vm-5-disk-0" in made.err
