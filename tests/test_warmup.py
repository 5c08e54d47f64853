"""The agent's warm-up commands succeed and leave the agent as it was."""

import logging
import os
import tempfile
import threading

import pytest

from jdss import log, warmup


@pytest.fixture
def agent_state(tmp_path, monkeypatch):
    """What the warm-up must put back (logging, the secrets to redact, its
    thread, its sockets, its temporary directory), read when called."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(log.REDACTOR, "secrets", {"a-secret-of-before"})
    root = logging.getLogger()
    return lambda: (root.handlers[:], root.level, set(log.REDACTOR.secrets),
                    threading.active_count(), os.listdir(tmp_path),
                    sorted(os.listdir("/proc/self/fd")))


def test_every_warm_up_command_succeeds(agent_state):
    """Both backends, as the plugin asks (a command that failed would
    leave its code's first pass to the children)."""
    before = agent_state()
    assert warmup.run() is True
    assert agent_state() == before


def test_the_rest_commands_reach_the_answerer(tmp_path):
    from jdss.app import JdssApp
    with warmup.Answerer() as answerer:
        argv = warmup.commands(str(tmp_path), answerer.port)
        rest = [a for a in argv if "rest.yaml" in a[1]]
        assert [a[2:4] for a in rest] == [["pool", "show"],
                                          ["volume", "list"]]
        assert [JdssApp().run(a) for a in rest] == [0, 0]
    assert not answerer.thread.is_alive()


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


def test_what_else_connects_cannot_hold_the_answerer(tmp_path):
    """Any local process may connect to the answerer's port: junk, or a
    request never finished, gets no answer and ends with the block."""
    import socket
    import time
    from jdss.app import JdssApp
    with warmup.Answerer() as answerer:
        junk = socket.create_connection(("127.0.0.1", answerer.port))
        junk.sendall(b"JUNK\r\n\r\n")
        slow = socket.create_connection(("127.0.0.1", answerer.port))
        slow.sendall(b"G")
        rest = [a for a in warmup.commands(str(tmp_path), answerer.port)
                if "rest.yaml" in a[1]]
        assert JdssApp().run(rest[0]) == 0      # answered all the same
        started = time.monotonic()
    assert time.monotonic() - started < warmup.CONNECTION_SECONDS + 1
    assert not answerer.thread.is_alive()
    assert junk.recv(100) == b""                # closed, no answer
    junk.close()
    slow.close()
