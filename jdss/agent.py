"""jdss-agent: every jdss command without a Python start per call.

Proxmox calls the plugin constantly (status every 10 seconds on every node,
lists, allocations, snapshots), and starting Python with jdss's imports
costs far more than the work. The agent imports jdss once; for each request
it forks a child that runs the very same command code (``JdssApp().run``)
on the request's argument list, with the request's text as stdin and its
stdout and stderr captured, and answers with the exit code and both
outputs. Nothing but the imports is shared between requests: each child
reads its configuration afresh and holds its own locks, so an answer is
exactly what a ``jdss`` process would have given, and a request that
crashes or hangs ends only its own child. Only root (or the agent's own
user) may connect.

Protocol, JSON lines on a Unix stream socket::

    request: {"protocol": 3, "argv": ["--storage", "s1", "pool", "show",
              "-f", "json"], "input": "text for stdin (optional)"}
    accepted: {"protocol": 3, "accepted": true}       (at once)
    answer:  {"protocol": 3, "exit": 0, "stdout": "...", "stderr": "..."}

A client that is not told at once that its request was taken (no agent, a
closed connection, a hang, another protocol) runs ``jdss`` itself: the
command did not start in the agent. A bad request gets its answer (exit
2) without the accepted line; so does one of protocol 2 (before the
accepted line), whose client then runs ``jdss`` itself, once.
"""

import argparse
import json
import logging
import os
import select
import signal
import socket
import struct
import sys
import time

LOG = logging.getLogger("jdss.agent")
DEFAULT_SOCKET = "/run/jdss/agent.sock"
PROTOCOL = 3
MAX_REQUEST = 1 << 20
REQUEST_TIMEOUT = 10.0          # seconds a client may take to send its request
# modules every command needs, imported before the first fork
PRELOAD = ("cliff.app", "cliff.commandmanager", "cliff.show", "cliff.lister",
           "cliff.formatters.json_format", "cliff.formatters.value",
           "stevedore", "yaml", "requests", "urllib3", "jdss.app",
           "jdss.commands.base", "jdss.commands.volume",
           "jdss.commands.snapshot", "jdss.commands.pool", "jdss.config",
           "jdss.pvecfg", "jdss.storage", "jdss.drivers",
           "jdss.backends.rest", "jdss.backends.fake")


def preload():
    """Import what commands use, so that children start warm."""
    import importlib
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:        # an optional formatter, say
            LOG.debug("not preloaded: %s: %s", name, exc)
    # build and drop one app: fills importlib's and stevedore's caches
    from jdss.app import JdssApp
    JdssApp()


def peer_uid(conn):
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                            struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def read_request(conn):
    """The decoded request line, or raise ValueError."""
    data = b""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([conn], [], [], left)[0]:
            raise ValueError("no request line in time")
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a request line")
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    request = json.loads(data.split(b"\n", 1)[0])
    if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
        raise ValueError(f"expected protocol {PROTOCOL}")
    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str)
                                             for a in argv):
        raise ValueError("argv must be a list of strings")
    if not isinstance(request.get("input", ""), str):
        raise ValueError("input must be text")
    return request


def _memfd(name, data=b""):
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _drain(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(chunk)


def serve_request(conn):
    """In the child: run one request's command and answer it."""
    try:
        request = read_request(conn)
    except ValueError as exc:
        conn.sendall(json.dumps({"protocol": PROTOCOL, "exit": 2,
                                 "stdout": "", "stderr":
                                 f"jdss: error: bad request: {exc}\n"})
                     .encode() + b"\n")
        return
    # taken: the client now waits for the command, however long it runs
    conn.sendall(json.dumps({"protocol": PROTOCOL, "accepted": True})
                 .encode() + b"\n")
    stdin = _memfd("stdin", request.get("input", "").encode())
    out, err = _memfd("stdout"), _memfd("stderr")
    for fd, target in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
    root = logging.getLogger()
    for handler in root.handlers[:]:     # the agent's own, not the command's
        root.removeHandler(handler)
    # the program name messages and help show: jdss's, not the agent's
    sys.argv = [os.path.join(os.path.dirname(sys.argv[0]), "jdss")] \
        + request["argv"]
    from jdss.app import JdssApp
    try:
        code = JdssApp().run(request["argv"])
    except SystemExit as exc:              # argparse errors, --help
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:           # never without an answer
        print(f"jdss: error: unexpected {type(exc).__name__}: {exc}",
              file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    answer = {"protocol": PROTOCOL, "exit": int(code or 0),
              "stdout": _drain(out), "stderr": _drain(err)}
    conn.sendall(json.dumps(answer).encode() + b"\n")


class Agent:
    """The listening socket and the children serving requests."""

    def __init__(self, path, max_seconds):
        self.path = path
        self.max_seconds = max_seconds
        self.children = {}               # pid -> start time
        self.stopping = False
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)              # a socket left by a crash
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self.sock.bind(path)
        finally:
            os.umask(old_umask)
        self.sock.listen(128)

    def stop(self, *_args):
        self.stopping = True

    def run(self):
        allowed = {0, os.getuid()}
        while not self.stopping:
            self.reap()
            try:
                ready = select.select([self.sock], [], [], 0.5)[0]
            except InterruptedError:
                continue
            if not ready:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if peer_uid(conn) not in allowed:
                conn.close()
                continue
            self.fork(conn)
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def fork(self, conn):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self.sock.close()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                serve_request(conn)
            except BaseException:        # the client sees a closed socket
                code = 1
            finally:
                os._exit(code)
        conn.close()
        self.children[pid] = time.monotonic()

    def reap(self):
        """Collect finished children; end those past the time limit."""
        for pid, started in list(self.children.items()):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                del self.children[pid]
            elif time.monotonic() - started > self.max_seconds:
                LOG.warning("request in process %d ran over %g s: ending it",
                            pid, self.max_seconds)
                os.kill(pid, signal.SIGKILL)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="jdss-agent",
        description="Run jdss commands for the Proxmox plugin without a "
                    "Python start per call.")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help=f"socket path (default {DEFAULT_SOCKET})")
    parser.add_argument("--max-request-seconds", type=float, default=3600,
                        help="end a request still running after this long "
                             "(default 3600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="jdss-agent: %(message)s")
    preload()
    try:
        agent = Agent(args.socket, args.max_request_seconds)
    except OSError as exc:
        print(f"jdss-agent: cannot listen on {args.socket}: {exc.strerror}",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    print("ready", flush=True)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
