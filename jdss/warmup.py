"""Commands run once in jdss-agent before it forks its children.

A child of the agent runs one command in a process that has never run
one. Its first pass through the command code (options, configuration,
backend, requests and urllib3, the output) fills caches and makes
objects that the second pass finds, and the pages it writes are copied
from the agent's. :func:`run` makes that first pass in the agent, as the
plugin asks (``--storage`` and ``--section``, a log file), on storages of
its own in a storage.cfg of its own (``$JDSS_PVE_ROOT`` meanwhile): the
fake backend in a temporary directory and the REST backend over plain
HTTP against an answerer on a loopback port. A child then starts after
it: the plugin's ``pool show`` takes 0.7 to 1.7 ms of CPU and 150 to
200 page faults less (README, "Benchmarks").

What the commands change in the agent that a later command could see is
put back: the logging set-up (their log file closed), the secrets to
redact and ``$JDSS_PVE_ROOT`` (each command starts a request of its
own). The app each child runs is another one, never run.
"""

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time

LOG = logging.getLogger(__name__)
POOL = "Pool-0"
STORAGE = "jdss-warm-up"        # its storages' ids, in its own storage.cfg
# what the REST backend asks in the warm-up, and the answers it gets
ANSWERS = {
    f"/api/v4/pools/{POOL}": {"name": POOL, "id": "0", "health": "ONLINE",
                              "size": str(1 << 40),
                              "available": str(1 << 40)},
    f"/api/v4/pools/{POOL}/volumes": {"results": 0, "entries": []},
}
OUTPUT = ("-f", "json", "--noindent")       # as the plugin asks
CONNECTION_SECONDS = 1.0        # the answerer's bound for one connection
MAX_REQUEST = 8192


def run():
    """Run the warm-up commands; True if each answered with exit code 0."""
    from jdss import log, pvecfg
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    secrets = set(log.REDACTOR.secrets)
    pve_root = os.environ.get(pvecfg.PVE_ROOT_ENV)
    directory = None
    try:
        # the agent's own handlers would print what the commands log
        root.handlers[:] = []
        directory = tempfile.mkdtemp(prefix="jdss-agent-warm-up-")
        # its own /etc/pve: storage.cfg and no password file of a node's
        os.environ[pvecfg.PVE_ROOT_ENV] = directory
        with Answerer() as answerer:
            codes = [_run_app(argv)
                     for argv in commands(directory, answerer.port)]
        return all(code == 0 for code in codes)
    except Exception as exc:     # a warm-up that fails costs nothing more
        LOG.debug("warm-up: %s", exc)
        return False
    finally:
        for handler in root.handlers:    # the commands' log files
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        log.REDACTOR.secrets.clear()
        log.REDACTOR.secrets.update(secrets)
        if pve_root is None:
            os.environ.pop(pvecfg.PVE_ROOT_ENV, None)
        else:
            os.environ[pvecfg.PVE_ROOT_ENV] = pve_root
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def commands(directory, port):
    """The warm-up's argument lists: the plugin's reads (its options, a
    storage.cfg section, a log file) on a fake and a REST storage."""
    log_file = os.path.join(directory, "warm-up.log")
    fake = _config(directory, "fake.yaml", backend="fake",
                   fake_state_dir=os.path.join(directory, "state"),
                   rest_api_addresses=["127.0.0.1"], logfile=log_file,
                   loglevel="info")
    rest = _config(directory, "rest.yaml", backend="joviandss",
                   rest_api_addresses=["127.0.0.1"], rest_api_port=port,
                   driver_use_ssl=False, rest_api_connect_timeout=1,
                   rest_api_read_timeout=1, rest_api_deadline=1,
                   rest_api_failover_window=1, logfile=log_file,
                   loglevel="info")
    storages = {f"{STORAGE}-fake": fake, f"{STORAGE}-rest": rest}
    sections = {storeid: {"type": "joviandss", "pool_name": POOL,
                          "config": path, "content": "images",
                          "shared": "1"}
                for storeid, path in storages.items()}
    with open(os.path.join(directory, "storage.cfg"), "w") as handle:
        for storeid, section in sections.items():
            handle.write(f"joviandss: {storeid}\n" + "".join(
                f"\t{key} {value}\n" for key, value in section.items()
                if key != "type") + "\n")
    return [["--storage", storeid, "--section", json.dumps(section),
             *command, *OUTPUT]
            for storeid, section in sections.items()
            for command in (["pool", "show"], ["volume", "list"])]


def _config(directory, name, **values):
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
              "w") as handle:
        for key, value in values.items():
            handle.write(f"{key}: {json.dumps(value)}\n")
    return path


def _run_app(argv):
    from jdss.app import JdssApp
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        return JdssApp().run(argv)


class Answerer:
    """Answers the warm-up's REST requests on a loopback port of its own,
    one request a connection, from :data:`ANSWERS`; a thread that has
    ended when the ``with`` block does. Whatever else connects (any local
    process may) gets at most :data:`CONNECTION_SECONDS` and no answer,
    as does a request for a path not in :data:`ANSWERS`."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join(CONNECTION_SECONDS + 5)
        self.sock.close()
        if self.thread.is_alive():       # the agent must not fork with it
            raise RuntimeError("the warm-up's answerer did not end")

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:              # socket.timeout: look at done
                continue
            with conn, contextlib.suppress(Exception):
                self._answer(conn)

    @staticmethod
    def _answer(conn):
        deadline = time.monotonic() + CONNECTION_SECONDS
        request = b""
        while b"\r\n\r\n" not in request:
            left = deadline - time.monotonic()
            if left <= 0 or len(request) > MAX_REQUEST:
                return
            conn.settimeout(left)
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        words = request.split(b" ", 2)
        if len(words) < 3:
            return
        path = words[1].decode("ascii", "replace").split("?", 1)[0]
        if path not in ANSWERS:
            return
        data = json.dumps({"data": ANSWERS[path], "error": None}).encode()
        conn.settimeout(max(deadline - time.monotonic(), 0.01))
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json"
                     f"\r\nContent-Length: {len(data)}\r\n"
                     "Connection: close\r\n\r\n".encode() + data)
