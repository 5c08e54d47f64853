"""Progress: a rewritten line on a terminal, nothing when not on one."""

import io
import os
import pty
import select
import subprocess
import time

import pytest

from jdss.backends.model import PoolModel
from jdss.backends.store import StateStore
from jdss.progress import Progress, Waiting
from tests.conftest import jdss_command, run_on_terminal, write_config


def drawn_on_terminal(draw):
    """What ``draw(stream)`` writes to a pseudo-terminal."""
    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as terminal:
            draw(terminal)
        drawn = b""
        while select.select([master], [], [], 0.2)[0]:
            drawn += os.read(master, 4096)
        return drawn.decode()
    finally:
        os.close(master)
        os.close(slave)


def test_progress_draws_on_a_terminal_only():
    def copy(stream):
        with Progress("copying", 100, stream=stream, interval=0) as progress:
            progress.update(50)
            progress.update(100)

    drawn = drawn_on_terminal(copy)
    assert "\rcopying: 50 B of 100 B (50%)" in drawn
    assert "(100%)" in drawn and drawn.endswith("\n")

    piped = io.StringIO()
    copy(piped)
    with Waiting("attaching", stream=piped, interval=0.01):
        pass
    assert piped.getvalue() == ""


def test_waiting_counts_seconds_on_a_terminal():
    def wait(stream):
        with Waiting("attaching x", stream=stream, interval=0.01):
            time.sleep(0.1)

    assert "\rattaching x, 0 s" in drawn_on_terminal(wait)


@pytest.fixture
def big_pool(tmp_path, tls_cert):
    """An emulator whose pool holds more volumes than one REST page."""
    from tests.emulator import Emulator
    store = StateStore(str(tmp_path / "emulator-state"), "Pool-0", 10 << 40)
    with store.transaction() as model:
        assert isinstance(model, PoolModel)
        for n in range(1200):
            model.create_volume(f"v_vm-{1000 + n}-disk-0", 1 << 30, True,
                                "16K")
    emulator = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",))
    yield write_config(tmp_path / "rest.yaml", **emulator.config())
    emulator.stop()


def test_listing_thousands_shows_progress_on_a_terminal(big_pool):
    argv = [jdss_command(), "-c", str(big_pool), "volume", "list", "-f",
            "value", "-c", "name"]
    code, out, terminal = run_on_terminal(argv)
    assert code == 0 and len(out.split()) == 1200
    assert "listing volumes: 100 entries" in terminal   # pages of 100
    assert "listing volumes: 1200 entries" in terminal  # the final count

    quiet = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
