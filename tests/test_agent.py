"""jdss-agent: the read-only hot path on a Unix socket."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import jdss_command, write_config


@pytest.fixture
def agent(tmp_path):
    path = str(tmp_path / "run" / "agent.sock")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable),
                                          "jdss-agent"), "--socket", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"

    def ask(**request):
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(path)
            conn.sendall(json.dumps(request).encode() + b"\n")
            return json.loads(conn.makefile().readline())

    ask.path = path
    yield ask
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    assert not os.path.exists(path)


def cli_json(config, *args):
    return json.loads(subprocess.run(
        [jdss_command(), "-c", str(config)] + list(args) + ["-f", "json"],
        capture_output=True, text=True, check=True).stdout)


def test_same_answers_as_the_cli(agent, config_file):
    subprocess.run([jdss_command(), "-c", str(config_file), "volume",
                    "create", "vm-100-disk-0", "--size", "1G"], check=True,
                   capture_output=True)
    for op, args in (("pool_show", ["pool", "show"]),
                     ("volume_list", ["volume", "list"]),
                     ("volume_show", ["volume", "show", "vm-100-disk-0"])):
        reply = agent(config=str(config_file), op=op, name="vm-100-disk-0")
        assert reply == {"ok": True, "data": cli_json(config_file, *args)}
    direct = {"transport": "iscsi-direct"}
    reply = agent(config=str(config_file), op="volume_path",
                  name="vm-100-disk-0", set=direct)
    expected = json.loads(subprocess.run(
        [jdss_command(), "-c", str(config_file), "--set",
         "transport=iscsi-direct", "volume", "path", "vm-100-disk-0", "-f",
         "json"], capture_output=True, text=True, check=True).stdout)
    assert reply == {"ok": True, "data": expected}
    assert expected["path"] == ("iscsi://127.0.0.1:3260/"
                                "iqn.2021-10.iscsi:pool-0:vm-100-disk-0/0")
    shown = subprocess.run([jdss_command(), "-c", str(config_file),
                            "target", "show", "vm-100-disk-0"],
                           capture_output=True, text=True)
    assert shown.returncode == 4          # path attached nothing


def test_socket_is_for_root_only(agent):
    assert os.stat(agent.path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(agent.path)).st_mode & 0o777 == 0o700


def test_errors_carry_exit_codes(agent, config_file, tmp_path):
    missing = agent(config=str(tmp_path / "none.yaml"), op="pool_show")
    assert missing["ok"] is False and missing["exit_code"] == 3
    assert "not found" in missing["message"]
    nope = agent(config=str(config_file), op="volume_show", name="nope")
    assert nope == {"ok": False, "exit_code": 4,
                    "message": "volume 'nope' not found"}
    assert agent(config=str(config_file), op="volume_delete")["exit_code"] \
        == 2
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(agent.path)
        conn.sendall(b"not json\n")
        assert json.loads(conn.makefile().readline())["exit_code"] == 2


def test_config_changes_are_picked_up(agent, tmp_path):
    config = write_config(tmp_path / "c.yaml", pool="Pool-A")
    assert agent(config=str(config), op="pool_show")["data"]["name"] == \
        "Pool-A"
    write_config(tmp_path / "c.yaml", pool="Pool-Bee")
    assert agent(config=str(config), op="pool_show")["data"]["name"] == \
        "Pool-Bee"
    assert agent(config=str(config), op="pool_show",
                 pool="Pool-C")["data"]["name"] == "Pool-C"


def test_warm_status_is_one_request_per_call(agent, emulator, tmp_path):
    config = write_config(tmp_path / "rest.yaml", **emulator.config())
    for _ in range(3):
        reply = agent(config=str(config), op="pool_show",
                      set={"rest_api_deadline": 5})
        assert reply["ok"] and reply["data"]["name"] == "Pool-0"
    assert [m for _, m, _, _ in emulator.requests()] == ["GET"] * 3
