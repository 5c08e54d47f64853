"""The agent's warm-up commands succeed and leave the agent as it was."""

import logging
import os
import tempfile
import threading

import pytest

from jdss import log, warmup


@pytest.fixture
def agent_state(tmp_path, monkeypatch):
    """What the warm-up must put back (logging, the secrets to redact,
    $JDSS_PVE_ROOT, its thread, its sockets and log file, its temporary
    directory), read when called."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(log.REDACTOR, "secrets", {"a-secret-of-before"})
    root = logging.getLogger()
    return lambda: (root.handlers[:], root.level, set(log.REDACTOR.secrets),
                    os.environ.get("JDSS_PVE_ROOT"),
                    threading.active_count(), os.listdir(tmp_path),
                    sorted(os.listdir("/proc/self/fd")))


def test_every_warm_up_command_succeeds(agent_state):
    """Both backends, as the plugin asks (a command that failed would
    leave its code's first pass to the children)."""
    before = agent_state()
    assert warmup.run() is True
    assert agent_state() == before


def rest_commands(directory, port):
    return [argv for argv in warmup.commands(str(directory), port)
            if argv[1].endswith("-rest")]


def test_the_rest_commands_reach_the_answerer(tmp_path, monkeypatch):
    from jdss.app import JdssApp
    monkeypatch.setenv("JDSS_PVE_ROOT", str(tmp_path))
    with warmup.Answerer() as answerer:
        rest = rest_commands(tmp_path, answerer.port)
        assert [a[4:6] for a in rest] == [["pool", "show"],
                                          ["volume", "list"]]
        assert [JdssApp().run(a) for a in rest] == [0, 0]
    assert not answerer.thread.is_alive()


def test_the_warm_up_asks_as_the_plugin_does(tmp_path):
    """Its storages in a storage.cfg of its own, each command with the
    section the plugin passes, and a log file (as nodes have)."""
    from jdss import pvecfg
    argv = warmup.commands(str(tmp_path), 1)
    on_disk = pvecfg.sections(str(tmp_path))
    assert sorted(on_disk) == ["jdss-warm-up-fake", "jdss-warm-up-rest"]
    for a in argv:
        assert a[0] == "--storage" and a[2] == "--section"
        section = pvecfg.parse_section_argument(a[3])
        assert {k: v for k, v in section.items() if k != "type"} == \
            {k: v for k, v in on_disk[a[1]].items() if k != "type"}
        config = pvecfg.load_config(a[1], section, root=str(tmp_path))
        assert config.logfile and config.loglevel


def test_a_failing_warm_up_is_only_a_missed_saving(agent_state,
                                                   monkeypatch):
    def broken(argv):
        raise RuntimeError("the warm-up broke")
    monkeypatch.setattr(warmup, "_run_app", broken)
    before = agent_state()
    assert warmup.run() is False
    assert agent_state() == before


def test_no_temporary_directory_no_warm_up(agent_state, monkeypatch):
    def refused(**kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    before = agent_state()
    assert warmup.run() is False
    assert agent_state() == before


def test_the_agent_s_log_hears_nothing_of_the_warm_up(agent_state):
    """The agent's own handler (its journal) is set aside meanwhile: the
    commands log their REST exchanges at debug level."""
    heard = []
    handler = logging.Handler()
    handler.emit = heard.append
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert warmup.run() is True
    finally:
        root.removeHandler(handler)
    assert heard == []


def test_a_command_that_fails_fails_the_warm_up(agent_state, monkeypatch):
    monkeypatch.setattr(warmup, "_run_app", lambda argv: 1)
    before = agent_state()
    assert warmup.run() is False
    assert agent_state() == before


def test_what_else_connects_cannot_hold_the_answerer(tmp_path,
                                                    monkeypatch):
    """Any local process may connect to the answerer's port: junk, a
    path the warm-up does not ask, or a request never finished, gets no
    answer, and ends with the block."""
    import socket
    import time
    from jdss.app import JdssApp
    monkeypatch.setenv("JDSS_PVE_ROOT", str(tmp_path))
    with warmup.Answerer() as answerer:
        junk = socket.create_connection(("127.0.0.1", answerer.port))
        junk.sendall(b"JUNK\r\n\r\n")
        elsewhere = socket.create_connection(("127.0.0.1", answerer.port))
        elsewhere.sendall(b"GET /api/v4/pools HTTP/1.1\r\n\r\n")
        rest = rest_commands(tmp_path, answerer.port)
        assert JdssApp().run(rest[0]) == 0      # answered all the same
        slow = socket.create_connection(("127.0.0.1", answerer.port))
        slow.sendall(b"G")
        started = time.monotonic()
    assert time.monotonic() - started < warmup.CONNECTION_SECONDS + 1
    assert not answerer.thread.is_alive()
    assert junk.recv(100) == b""                # closed, no answer
    assert elsewhere.recv(100) == b""           # not a warm-up path
    junk.close()
    elsewhere.close()
    slow.close()
