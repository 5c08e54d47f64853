"""Shared fixtures: configurations, storages per backend, CLI runners."""

import contextlib
import json
import logging
import os
import pty
import subprocess
import sys
import threading

import pytest
import yaml

from jdss import config as jconfig
from jdss import drivers
from jdss.storage import Storage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the fake, and the REST backend against the emulator answering as newer
#: and as older appliance firmware: one contract, identical expectations
BACKENDS = ["fake", "joviandss", "joviandss-older"]
#: emulator options of each REST backend parameter
FIRMWARES = {"joviandss": {"firmware": "newer"},
             "joviandss-older": {"firmware": "older",
                                 "no_vip_portals": True}}


def write_config(path, **values):
    """Write a YAML config for the fake backend with ``values`` on top."""
    data = {"backend": "fake", "pool": "Pool-0",
            "fake_state_dir": str(path.parent / "state"),
            "fake_pool_size": "100G",
            "rest_api_addresses": ["127.0.0.1"]}
    data.update(values)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def config_file(tmp_path):
    return write_config(tmp_path / "jdss.yaml")


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1-3, made once per run."""
    from jdss.emulator.server import make_self_signed
    directory = str(tmp_path_factory.mktemp("tls"))
    return make_self_signed(directory, ["127.0.0.1:1", "127.0.0.2:1",
                                        "127.0.0.3:1"])


@pytest.fixture
def emulator_options():
    """Options of the ``emulator`` fixture (override to change them)."""
    return {}


@pytest.fixture
def emulator(tmp_path, tls_cert, emulator_options):
    """A jdss-emulator over HTTPS on 127.0.0.1 with pools Pool-0, Pool-1."""
    from tests.emulator import Emulator
    running = Emulator(str(tmp_path), *tls_cert, **emulator_options)
    yield running
    running.stop()


@pytest.fixture(params=BACKENDS)
def make_storage(request, tmp_path, tls_cert):
    """Factory of :class:`Storage` objects on the parametrised backend."""
    remote = None
    if request.param in FIRMWARES:
        from tests.emulator import Emulator
        remote = Emulator(str(tmp_path), *tls_cert,
                          **FIRMWARES[request.param])
        request.addfinalizer(remote.stop)

    def make(**values):
        values.setdefault("fake_pool_size", "100G")
        if remote is not None:
            values = dict(remote.config(fake_nfs_root=remote.state_dir),
                          **values)
        path = write_config(tmp_path / "jdss.yaml", **values)
        cfg = jconfig.load(str(path))
        return Storage(cfg, drivers.load_backend(cfg))

    make.backend = request.param
    make.emulator = remote
    return make


@pytest.fixture
def storage(make_storage):
    return make_storage()


@pytest.fixture(scope="session")
def private_mounts():
    """This test process in a mount namespace of its own, for tests that
    mount (as root): whatever they leave mounted goes with the process."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    from jdss import privatens
    privatens._enter_private_namespace()


def mounts_under(directory):
    """Mount points of this process under ``directory``."""
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1] for line in handle]
    return [p for p in points if p == str(directory)
            or p.startswith(str(directory) + "/")]


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys, config_file):
    """Run jdss in this process: ``cli("volume", "list", "-f", "json")``."""
    from jdss.app import JdssApp

    def run(*args, config=None):
        root = logging.getLogger()
        handlers = list(root.handlers)
        capsys.readouterr()
        try:
            code = JdssApp().run(["-c", str(config or config_file)]
                                 + list(args))
        finally:
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
                    handler.close()
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def run_on_terminal(argv, stdin=None):
    """Run ``argv`` with stderr on a pseudo-terminal: (code, stdout, tty)."""
    import select
    import threading
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
    reader.start()
    chunks = []
    try:
        while True:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:          # EIO: every writer has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        reader.join(timeout=120)
        code = proc.wait(timeout=120)
    finally:
        os.close(master)
        proc.stdout.close()
    return code, out[0] if out else b"", b"".join(chunks).decode()


def jdss_command():
    """The installed console script next to this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), "jdss")


@pytest.fixture
def run_jdss(config_file):
    """Run the real ``jdss`` console script as a separate process."""

    def run(*args, config=None, env=None, **kwargs):
        proc = subprocess.run(
            [jdss_command(), "-c", str(config or config_file)] + list(args),
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, **(env or {})), **kwargs)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def python_script(script, *args, env=None, timeout=120):
    """``script`` run by this Python in a fresh interpreter, with ``args``
    and ``env`` added to the environment; the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
        env=None if env is None else dict(os.environ, **env))


_SETPRIORITY = os.setpriority           # the kernel's, whatever tests mock


def in_thread_at(level, work):
    """``work()`` in a thread of its own started at nice ``level`` (as
    the thread would be, where it may not): the thread's level and what
    ``work`` returned."""
    result = {}

    def run():
        with contextlib.suppress(PermissionError):
            _SETPRIORITY(os.PRIO_PROCESS, 0, level)
        result["own"] = os.getpriority(os.PRIO_PROCESS, 0)
        result["returned"] = work()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return result["own"], result["returned"]


def modules_after(*argv):
    """Names in sys.modules after a jdss run in a fresh interpreter.

    (-X importtime cannot tell: modules loaded through entry points go
    through importlib.import_module, which it does not instrument.)
    """
    script = ("import json, sys\n"
              "from jdss.app import main\n"
              f"code = main({list(argv)!r})\n"
              "sys.stdout.flush()\n"
              "print('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
              "sys.exit(code)\n")
    proc = python_script(script, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.rsplit("MODULES ", 1)[1]))


@pytest.fixture(scope="module")
def multipath_config(tmp_path_factory):
    """multipath's configuration for tests.nodestub's stand-in nodes."""
    from tests.nodestub import make_multipath_config
    return make_multipath_config(tmp_path_factory)


@pytest.fixture
def node(tmp_path, multipath_config):
    """A stand-in Proxmox node (tests.nodestub), its agent stopped after."""
    from tests.nodestub import Node
    made = Node(tmp_path, multipath_config)
    yield made
    made.stop_agent()
