"""A thread running ahead for a while: refused quietly, asked once, and
commands started meanwhile at the thread's own level when they ask."""

import errno
import os

import pytest

from jdss import priority
from tests.conftest import in_thread_at


def _level():
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_any_refusal_of_the_kernel_leaves_the_thread_as_it_was(
        monkeypatch):
    asked = []

    def unsupported(*args):
        asked.append(args)
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(priority, "_may_raise", True)
    monkeypatch.setattr(os, "setpriority", unsupported)

    def twice():
        own, inside = _level(), []
        for _ in range(2):
            with priority.ahead(10):
                inside.append(_level())
        return own, inside, _level()

    own, inside, after = in_thread_at(0, twice)[1]
    assert inside == [own, own] and after == own
    assert len(asked) == 1                # not asked again


def test_a_command_outside_a_raise_starts_as_it_is():
    assert priority.at_own_level(["tgtd", "-f"]) == ["tgtd", "-f"]


@pytest.mark.skipif(os.geteuid() != 0, reason="a higher priority needs root")
def test_commands_started_while_ahead_start_at_the_threads_own_level():
    def nested():
        seen = []
        with priority.ahead(10):
            seen.append((_level(), priority.at_own_level(["x"])))
            with priority.ahead(10):
                seen.append((_level(), priority.at_own_level(["x"])))
            seen.append((_level(), priority.at_own_level(["x"])))
        seen.append((_level(), priority.at_own_level(["x"])))
        return seen

    assert in_thread_at(0, nested)[1] == [(-10, ["nice", "-n", "10", "x"]),
                                  (-20, ["nice", "-n", "20", "x"]),
                                  (-10, ["nice", "-n", "10", "x"]),
                                  (0, ["x"])]
