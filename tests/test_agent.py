"""jdss-agent: the very same commands, forked from a warm process."""

import errno
import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from tests.agentproc import AgentProcess
from tests.conftest import jdss_command, python_script, write_config


@pytest.fixture
def agent(tmp_path):
    running = AgentProcess(tmp_path / "run" / "agent.sock",
                           ["--max-request-seconds", "5"])

    def ask(argv, input=None, raw=None):
        return running.exchange(argv or (), input=input, raw=raw)[1]

    ask.path = running.path
    ask.proc = running.proc
    yield ask
    running.stop()
    assert not os.path.exists(running.path)


def cli(*argv, input=None, env=None):
    proc = subprocess.run([jdss_command()] + [str(a) for a in argv],
                          capture_output=True, text=True, input=input,
                          env=env, timeout=60)
    return {"exit": proc.returncode, "stdout": proc.stdout,
            "stderr": proc.stderr}


def same(reply, expected):
    return {k: reply[k] for k in ("exit", "stdout", "stderr")} == expected


def test_answers_exactly_as_a_jdss_process(agent, config_file):
    c = ["-c", config_file]
    made = agent([*c, "volume", "create", "vm-100-disk-0", "--size", "1G",
                  "-f", "json"])
    assert made["exit"] == 0, made["stderr"]
    assert json.loads(made["stdout"])["name"] == "vm-100-disk-0"
    assert agent([*c, "snapshot", "create", "vm-100-disk-0", "s1"])["exit"] \
        == 0
    for argv in ([*c, "pool", "show", "-f", "json"],
                 [*c, "volume", "list", "-f", "json"],
                 [*c, "snapshot", "list", "vm-100-disk-0", "-f", "json"],
                 [*c, "snapshot", "rollback", "vm-100-disk-0", "s1",
                  "--dry-run", "-f", "json"],
                 [*c, "volume", "show", "vm-999-disk-0"],          # exit 4
                 [*c, "volume", "create", "bad name", "--size", "1"],
                 [*c, "--set", "transport=iscsi-direct", "volume", "path",
                  "vm-100-disk-0", "-f", "value", "-c", "path"],
                 [*c, "volume", "lsit"],
                 ["--version"], ["--help"], ["volume", "create", "-h"]):
        reply = agent(argv)
        assert reply["protocol"] == 3
        assert same(reply, cli(*argv)), argv
    assert agent([*c, "volume", "show", "vm-999-disk-0"])["exit"] == 4


def test_over_https_children_answer_as_jdss_processes(agent, emulator,
                                                      tmp_path):
    """Over HTTPS, in children that start with the agent's OpenSSL set
    up: the right CA, a wrong one and an address the certificate does not
    name are answered exactly as by a jdss process."""
    from jdss.emulator.server import make_self_signed
    from tests.emulator import Emulator
    other = tmp_path / "other"
    other.mkdir()
    # a certificate for another address, served on 127.0.0.1
    elsewhere = make_self_signed(str(other), ["127.0.0.9:1"])
    unnamed = Emulator(str(other), *elsewhere)
    try:
        configs = [
            (write_config(tmp_path / "right.yaml", **emulator.config()), 0,
             ""),
            (write_config(tmp_path / "wrong.yaml", **emulator.config(
                driver_ssl_cert_path=elsewhere[0])), 9,
             "certificate verify failed"),
            (write_config(tmp_path / "unnamed.yaml", **unnamed.config()), 9,
             "mismatch")]
        for config, exit_code, said in configs:
            argv = ["-c", str(config), "pool", "show", "-f", "json"]
            reply = agent(argv)
            assert reply["exit"] == exit_code, reply["stderr"]
            assert said in reply["stderr"]
            assert same(reply, cli(*argv)), argv
    finally:
        unnamed.stop()


def test_stdin_reaches_the_command(agent, tmp_path, monkeypatch):
    root = tmp_path / "pve"
    root.mkdir()
    (root / "storage.cfg").write_text(
        "joviandss: s1\n\tpool_name Pool-0\n\tcontrol_addresses 127.0.0.1\n"
        "\tcontrol_port 1\n\tuser_name admin\n")
    # the agent was started without JDSS_PVE_ROOT: use a section instead
    section = json.dumps({"type": "joviandss", "pool_name": "Pool-0",
                          "config": str(write_config(tmp_path / "f.yaml"))})
    reply = agent(["--storage", "s1", "--section", section,
                   "--passwords-from-stdin", "pool", "show", "-f", "json"],
                  input="user_password typed\n")
    assert reply["exit"] == 0, reply["stderr"]
    assert json.loads(reply["stdout"])["name"] == "Pool-0"


def test_configuration_is_read_afresh_for_every_request(agent, tmp_path):
    """The old agent kept a password after its file changed."""
    from tests.emulator import Emulator
    emulator = Emulator(str(tmp_path), plain_http=True)
    try:
        password_file = tmp_path / "pw"
        password_file.write_text("wrong-password\n")
        config = write_config(tmp_path / "r.yaml", **emulator.config(
            rest_api_password_file=str(password_file)))
        assert agent(["-c", config, "pool", "show"])["exit"] == 10
        password_file.write_text(open(emulator.password_file).read())
        assert agent(["-c", config, "pool", "show"])["exit"] == 0
    finally:
        emulator.stop()


def test_bad_requests_get_an_answer_and_the_agent_goes_on(agent,
                                                         config_file):
    # protocol 2 (no accepted line) is another protocol: its clients must
    # run jdss themselves, once, and nothing runs here
    for raw in (b"not json\n", b'{"protocol": 1, "argv": []}\n',
                b'{"protocol": 2, "argv": ["volume", "create", "v"]}\n',
                b'{"protocol": 3, "argv": "pool show"}\n'):
        reply = agent(None, raw=raw)
        assert reply["exit"] == 2 and "bad request" in reply["stderr"]
    assert agent(["-c", config_file, "pool", "show"])["exit"] == 0


def test_a_hanging_request_blocks_no_other_and_is_ended(agent, config_file,
                                                        tmp_path):
    hung = socket.socket(socket.AF_UNIX)
    hung.connect(agent.path)                  # never sends its request
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(agent.path)
    slow.sendall(json.dumps({"protocol": 3, "argv": [
        "-c", str(config_file), "pool", "show"]}).encode())    # no newline
    started = time.monotonic()
    assert agent(["-c", config_file, "pool", "show"])["exit"] == 0
    assert time.monotonic() - started < 5
    hung.settimeout(20)
    assert hung.recv(65536) == b""        # ended at --max-request-seconds
    assert time.monotonic() - started < 8
    hung.close()
    slow.close()


def test_a_crashing_child_leaves_the_agent_serving(agent, config_file):
    before = set(os.listdir("/proc"))
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(agent.path)
        conn.sendall(json.dumps({"protocol": 3, "argv": [
            "-c", str(config_file), "pool", "show"]}).encode())
        time.sleep(0.3)
        children = [int(p) for p in set(os.listdir("/proc")) - before
                    if p.isdigit() and _parent(int(p)) == agent.proc.pid]
        for pid in children:
            os.kill(pid, signal.SIGKILL)      # the child dies mid-request
        conn.settimeout(10)
        assert conn.recv(100) == b""          # closed: the client falls back
    assert agent(["-c", config_file, "pool", "show"])["exit"] == 0


def _nice(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(os.geteuid() != 0, reason="a higher priority needs root")
def test_the_agent_runs_above_its_children(agent, config_file):
    """On a busy node the agent's forks must not wait behind the load: it
    runs 10 nice levels above what it was started with (this test's),
    which its children, where the requests' work is done, keep."""
    started = os.getpriority(os.PRIO_PROCESS, 0)
    assert _nice(agent.proc.pid) == max(-20, started - 10)
    with socket.socket(socket.AF_UNIX) as taken:
        taken.connect(agent.path)         # a child serves it, for now
        assert agent(["-c", config_file, "pool", "show"])["exit"] == 0
        children = _children(agent.proc.pid)
        assert len(children) >= 2
        assert {_nice(pid) for pid in children} == {started}


@pytest.mark.parametrize("refusal", [errno.EPERM, errno.ENOSYS])
def test_an_agent_not_allowed_a_higher_priority_runs_as_started(
        monkeypatch, caplog, refusal):
    from jdss import agent as agent_module
    from jdss import priority

    def refuse(*_args):
        raise OSError(refusal, os.strerror(refusal))
    monkeypatch.setattr(priority, "_may_raise", True)
    monkeypatch.setattr(os, "setpriority", refuse)
    started = os.getpriority(os.PRIO_PROCESS, 0)
    assert agent_module.boost_priority(10) == started
    assert os.getpriority(os.PRIO_PROCESS, 0) == started
    assert "--boost 10 needs root or CAP_SYS_NICE" in caplog.text


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_socket_is_for_root_only(agent):
    assert os.stat(agent.path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(agent.path)).st_mode & 0o777 == 0o700


def _children(pid):
    return {int(p) for p in os.listdir("/proc")
            if p.isdigit() and _parent(int(p)) == pid}


def test_the_agent_warms_up_before_it_forks_and_quietly(tmp_path):
    """preload runs the warm-up (jdss.warmup); the agent's log, its
    journal on a node, hears nothing of it."""
    script = ("from jdss import agent, warmup\n"
              "ran = []\n"
              "real = warmup.run\n"
              "warmup.run = lambda: ran.append(real()) or ran[-1]\n"
              "agent.preload()\n"
              "print(ran)\n")
    proc = python_script(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[True]\n"
    running = AgentProcess(tmp_path / "agent.sock")
    running.stop()
    assert "warm-up" not in running.stderr
    assert "127.0.0.1" not in running.stderr


def test_an_agent_ended_while_it_warms_up_leaves_nothing(tmp_path):
    """SIGTERM (systemd stopping it) during the warm-up: the agent ends
    and its temporary directory goes with it."""
    script = ("import os, signal, sys\n"
              "from jdss import agent, warmup\n"
              "def ended(argv):\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    return 0\n"
              "warmup._run_app = ended\n"
              "sys.exit(agent.main(['--socket', sys.argv[1]]))\n")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    proc = python_script(script, tmp_path / "agent.sock",
                         env={"TMPDIR": str(temporary)})
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert os.listdir(temporary) == []
    assert not os.path.exists(tmp_path / "agent.sock")


def test_os_brick_is_frozen_out_of_the_children_s_collections():
    """What the agent imports for a kernel transport is frozen, as the
    first preload is: otherwise each child's first garbage collections
    walk os-brick's objects and copy the pages they lie on."""
    script = ("import gc\n"
              "from jdss import agent\n"
              "agent.preload_brick()\n"
              "assert agent.brick_loaded()\n"
              "young = [o for o in gc.get_objects()\n"
              "         if getattr(o, '__module__', None) and\n"
              "         str(o.__module__).startswith('os_brick')]\n"
              "print(len(young))\n")
    proc = python_script(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0\n"


def test_a_child_s_call_for_os_brick_goes_through_preload_brick(
        tmp_path, monkeypatch):
    """The agent's answer to a child that needed os-brick is
    preload_brick (imports and freezes), then the waiting children's
    retirement."""
    from jdss import agent as agent_module
    called = []
    monkeypatch.setattr(agent_module, "brick_loaded", lambda: False)
    monkeypatch.setattr(agent_module, "preload_brick",
                        lambda: called.append("preload_brick"))
    server = agent_module.Agent(str(tmp_path / "a.sock"), 5, spares=0)
    try:
        monkeypatch.setattr(server, "retire_waiting",
                            lambda: called.append("retire_waiting"))
        os.write(server.taken_w,
                 struct.pack("i", agent_module.WANTS_BRICK))
        server.note_taken()
    finally:
        server.sock.close()
        for fd in (server.taken_r, server.taken_w, server.alive_r,
                   server.alive_w, server.retire_r, server.retire_w):
            os.close(fd)
    assert called == ["preload_brick", "retire_waiting"]


def test_waiting_children_are_replaced_once_os_brick_is_needed(agent,
                                                               tmp_path):
    """A kernel transport's first request makes the agent import os-brick;
    the children forked before it end, so that the next requests (a mass
    VM start) find it imported in new ones instead of importing it each."""
    config = write_config(tmp_path / "k.yaml", transport="iscsi")
    assert cli("-c", config, "volume", "create", "v", "--size",
               "1G")["exit"] == 0
    waiting = _children(agent.proc.pid)
    assert len(waiting) >= 2
    reply = agent(["-c", config, "volume", "detach", "v"])
    assert reply["exit"] == 0, reply["stderr"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = _children(agent.proc.pid)
        if not now & waiting and len(now) >= len(waiting):
            break
        time.sleep(0.2)
    assert not now & waiting, "children without os-brick still wait"
    assert len(now) >= len(waiting)
    assert agent(["-c", config, "volume", "list", "-f", "value", "-c",
                  "name"])["stdout"] == "v\n"
