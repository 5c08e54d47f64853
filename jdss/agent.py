"""jdss-agent: every jdss command without a Python start per call.

Proxmox calls the plugin constantly (status every 10 seconds on every node,
lists, allocations, snapshots), and starting Python with jdss's imports
costs far more than the work. The agent imports jdss once; each request is
served by a child of its own, forked ahead of it, that runs the very same
command code (``JdssApp().run``, the app built for it alone) on the
request's argument list, with the request's text as stdin and its
stdout and stderr captured, and answers with the exit code and both
outputs. Nothing but the imports is shared between requests: each child
reads its configuration afresh and holds its own locks, so an answer is
exactly what a ``jdss`` process would have given, and a request that
crashes or hangs ends only its own child. Only root (or the agent's own
user) may connect. Where it may, the agent runs at a higher priority than
its children (which go back to the one it was started with): on a busy
node its forks, the next requests' children, do not wait behind the
children at work.

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
import contextlib
import gc
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
# modules the plugin's commands use, imported before the first fork: what
# a child imports itself costs it as much as a jdss process (the table
# that commands run without -f print, and the wcwidth prettytable loads
# to draw it: 20 ms; the transports: 5 ms)
PRELOAD = ("cliff.app", "cliff.commandmanager", "cliff.show", "cliff.lister",
           "cliff.formatters.json_format", "cliff.formatters.value",
           "cliff.formatters.table", "prettytable", "wcwidth", "stevedore",
           "yaml", "requests", "urllib3", "jdss.app", "jdss.commands.base",
           "jdss.commands.json_output", "jdss.commands.volume",
           "jdss.commands.snapshot", "jdss.commands.pool", "jdss.config",
           "jdss.pvecfg", "jdss.storage", "jdss.drivers",
           "jdss.backends.rest", "jdss.backends.fake",
           "jdss.transport", "jdss.rollback", "jdss_iscsi.direct",
           "jdss_iscsi.iscsi", "jdss_multipath.multipath", "jdss_nfs.nfs")
# os-brick, which the kernel transports (iscsi, multipath) load to attach
# and detach: 0.7 s of imports in each such child. It also makes every
# fork dearer (25 MB more to copy-on-write), so the agent imports it only
# once a child has needed it: on nodes whose storages use a kernel
# transport, from their first activation on.
PRELOAD_BRICK = ("os_brick", "os_brick.initiator.connector",
                 "oslo_concurrency.lockutils", "oslo_concurrency.processutils",
                 "oslo_config.cfg")
# children forked ahead, waiting for a request: as many as requests come at
# once in a busy moment (a mass VM start), so that none waits for a fork
SPARES = 16
# nice levels the agent runs above its children (root or CAP_SYS_NICE)
BOOST = 10
WANTS_BRICK = 0                 # child -> agent: "preload os-brick"


def _import(names):
    import importlib
    import warnings
    with warnings.catch_warnings():
        # oslo.privsep's eventlet warns that it is deprecated (jdss_iscsi's
        # brick module silences the same warning)
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError as exc:    # an optional driver, say
                LOG.debug("not preloaded: %s: %s", name, exc)


def preload():
    """Import what commands use, run the warm-up commands
    (:mod:`jdss.warmup`) and build the app that every child starts from:
    the agent never runs it, each child runs its own copy once (a
    fork's), so no child pays for the entry-point scan of the commands.
    The objects made so far are frozen out of the garbage collector, which
    would otherwise touch (and so copy) their pages in every child."""
    _import(PRELOAD)
    # OpenSSL sets itself up on the first TLS context a process makes
    # (3 ms); made here, every child starts with it done
    import ssl
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    from jdss.app import JdssApp
    sys.argv = [jdss_program()]          # the program name jdss's own shows
    # the commands' first pass made here, not in each child (jdss.warmup)
    from jdss import warmup
    if not warmup.run():
        LOG.info("the warm-up commands failed; children make their "
                 "first pass themselves")
    try:
        app = JdssApp()
    except Exception as exc:     # made again for each request, and answered
        LOG.warning("cannot build the jdss app ahead: %s", exc)
        app = None
    gc.collect()            # what the imports and the warm-up left unreachable
    gc.freeze()
    return app


def preload_brick():
    """Import os-brick for the children forked from now on, and freeze
    what it made out of the garbage collector as :func:`preload` does:
    left young, its objects would be walked (and their pages copied) by
    every child's first collections."""
    _import(PRELOAD_BRICK)
    gc.freeze()


def brick_loaded():
    return PRELOAD_BRICK[1] in sys.modules


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


def jdss_program():
    """The path of ``jdss`` beside this agent: the program name that
    messages and help show."""
    return os.path.join(os.path.dirname(sys.argv[0]), "jdss")


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


def serve_request(conn, app=None):
    """In the child: run one request's command and answer it; ``app`` is a
    JdssApp built ahead for it (the child's own, never run before)."""
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
    sys.argv = [jdss_program()] + request["argv"]
    from jdss.app import JdssApp
    try:
        code = (app or JdssApp()).run(request["argv"])
    except SystemExit as exc:              # argparse errors, --help
        # as Python ends a process: no code is 0, a message is printed
        code = 0 if exc.code is None else exc.code
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
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
    """The listening socket and the children serving requests.

    SPARES children are forked ahead of requests, each with its copy of
    the app built by :func:`preload`; a child waits for a connection,
    serves that one request and ends, so a request finds the fork and the
    app already made. A child tells the
    agent when it takes a connection (its PID on a pipe); the agent then
    forks a replacement and times the request.
    """

    def __init__(self, path, max_seconds, spares=SPARES, app=None,
                 child_nice=None):
        self.app = app
        self.child_nice = child_nice     # None: as the agent's
        self.path = path
        self.max_seconds = max_seconds
        self.spares = spares
        self.children = {}       # pid -> start of its request, None: waiting
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
        self.sock.setblocking(False)     # waiting children race to accept
        # children -> agent: "I took a connection" (a PID, 4 bytes)
        self.taken_r, self.taken_w = os.pipe()
        os.set_blocking(self.taken_r, False)
        # agent -> children: closed when the agent ends, however it ends
        self.alive_r, self.alive_w = os.pipe()
        # agent -> waiting children: closed to retire them (see note_taken)
        self.retire_r, self.retire_w = os.pipe()
        self.retired = set()

    def stop(self, *_args):
        self.stopping = True

    def run(self):
        while not self.stopping:
            self.reap()
            self.fork_spares()
            try:
                ready = select.select([self.taken_r], [], [], 0.5)[0]
            except InterruptedError:
                continue
            if ready:
                self.note_taken()
        self.note_taken()
        for pid, started in self.children.items():
            if started is None:          # waiting: no request to finish
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def fork_spares(self):
        waiting = sum(1 for pid, started in self.children.items()
                      if started is None and pid not in self.retired)
        for _ in range(self.spares - waiting):
            try:
                pid = os.fork()
            except OSError as exc:       # out of processes or memory
                LOG.warning("cannot fork: %s", exc.strerror)
                return
            if pid == 0:
                code = 0
                try:
                    self.child()
                except BaseException:    # the client sees a closed socket
                    code = 1
                finally:
                    os._exit(code)
            self.children[pid] = None

    def note_taken(self):
        try:
            data = os.read(self.taken_r, 4096)
        except BlockingIOError:
            return
        now = time.monotonic()
        for (pid,) in struct.iter_unpack("i", data[:len(data) // 4 * 4]):
            if pid == WANTS_BRICK and not brick_loaded():
                preload_brick()
                self.retire_waiting()
            elif pid in self.children:
                self.children[pid] = now
                self.retired.discard(pid)

    def retire_waiting(self):
        """End the children waiting without what the agent has just
        imported, so that the next requests find it in new ones. A child
        that has taken a connection serves it."""
        os.close(self.retire_w)          # EOF for the waiting children
        os.close(self.retire_r)
        self.retired.update(pid for pid, started in self.children.items()
                            if started is None)
        self.retire_r, self.retire_w = os.pipe()

    def child(self):
        """In a child: wait for one connection and serve it."""
        if self.child_nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, self.child_nice)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in (self.taken_r, self.alive_w, self.retire_w):
            os.close(fd)
        sys.argv = [jdss_program()]
        app = self.app                   # None: serve_request makes it
        allowed = {0, os.getuid()}
        while True:
            ready = select.select([self.sock, self.alive_r, self.retire_r],
                                  [], [])[0]
            if self.alive_r in ready or self.retire_r in ready:
                return                   # the agent is gone, or retired us
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                continue                 # another child took it
            break
        os.write(self.taken_w, struct.pack("i", os.getpid()))
        self.sock.close()
        conn.setblocking(True)
        if peer_uid(conn) not in allowed:
            conn.close()
            return
        had_brick = brick_loaded()
        serve_request(conn, app)
        if not had_brick and brick_loaded():
            os.write(self.taken_w, struct.pack("i", WANTS_BRICK))

    def reap(self):
        """Collect finished children; end those past the time limit."""
        while self.children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                self.retired.clear()
                break
            if not pid:
                break
            self.children.pop(pid, None)
            self.retired.discard(pid)
        now = time.monotonic()
        for pid, started in self.children.items():
            if started is not None and now - started > self.max_seconds:
                LOG.warning("request in process %d ran over %g s: ending it",
                            pid, self.max_seconds)
                os.kill(pid, signal.SIGKILL)


def boost_priority(levels):
    """Run the agent ``levels`` nice levels above what it was started
    with, if it may; the niceness its children go back to."""
    from jdss import priority
    started = os.getpriority(os.PRIO_PROCESS, 0)
    if not priority.raise_by(levels):
        LOG.warning("not allowed a higher priority (--boost %d needs "
                    "root or CAP_SYS_NICE): the forks for the next "
                    "requests share the CPU with those at work", levels)
    return started


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


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
    parser.add_argument("--boost", type=int, default=BOOST, metavar="N",
                        help="run the agent N nice levels above the "
                             "requests' children, so that the forks for "
                             "the next requests do not wait behind those "
                             f"at work (default {BOOST}; needs root or "
                             "CAP_SYS_NICE; 0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="jdss-agent: %(message)s")
    # ended while it starts: as SystemExit, so that the warm-up's
    # temporary directory is removed on the way out
    signal.signal(signal.SIGTERM, _exit_on_signal)
    app = preload()
    child_nice = boost_priority(args.boost)
    try:
        agent = Agent(args.socket, args.max_request_seconds, app=app,
                      child_nice=child_nice)
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
