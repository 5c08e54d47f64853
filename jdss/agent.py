"""jdss-agent: the hot read-only path, without a process start per call.

Proxmox asks every storage for its status every 10 seconds on every node,
and lists images often; a Python process per call costs far more than the
work. The agent keeps the imports, the parsed configuration and the REST
session warm and answers one JSON line per request on a Unix socket that
only root can use. It serves only reads (pool show, volume list, volume
show, volume path), with the same JSON as ``jdss ... -f json``; the plugin falls back to
the jdss command whenever the agent is not there. ``volume_path`` only
computes where a volume is; it never attaches anything.

Request:  {"config": PATH, "pool": NAME|null, "set": {KEY: VALUE},
           "op": "pool_show"|"volume_list"|"volume_show"|"volume_path",
           "name": NAME, "snapshot": SNAP|null}
Answer:   {"ok": true, "data": ...} or
          {"ok": false, "exit_code": N, "message": TEXT}
"""

import argparse
import json
import logging
import os
import signal
import socketserver
import sys
import threading

from jdss import config as jconfig
from jdss import drivers, errors, log
from jdss.commands.volume import LIST_COLUMNS
from jdss.storage import Storage

LOG = logging.getLogger("jdss.agent")
DEFAULT_SOCKET = "/run/jdss/agent.sock"
MAX_REQUEST = 64 << 10


class StorageCache:
    """One Storage per configuration, rebuilt when its file changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._storages = {}

    def get(self, path, pool, overrides):
        info = os.stat(path)
        key = (os.path.abspath(path), pool, json.dumps(overrides,
                                                       sort_keys=True))
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            cached = self._storages.get(key)
            if cached is None or cached[0] != stamp:
                values = dict(overrides)
                if pool:
                    values["pool"] = pool
                cfg = jconfig.load(path, overrides=values)
                log.add_secrets(cfg.secrets())
                cached = (stamp, Storage(cfg, drivers.load_backend(cfg)))
                self._storages[key] = cached
            return cached[1]


def answer(cache, request):
    """The answer to one decoded request."""
    try:
        if not isinstance(request, dict) or not request.get("config"):
            raise errors.InvalidInput("request needs a config path")
        overrides = request.get("set") or {}
        if not isinstance(overrides, dict):
            raise errors.InvalidInput("'set' must be a mapping")
        try:
            storage = cache.get(request["config"], request.get("pool"),
                                overrides)
        except FileNotFoundError:
            raise errors.ConfigError(f"config file {request['config']} not "
                                     "found") from None
        op = request.get("op")
        if op == "pool_show":
            data = storage.pool()
        elif op == "volume_list":
            data = [{c: v[c] for c in LIST_COLUMNS}
                    for v in storage.list_volumes()]
        elif op == "volume_show":
            data = storage.volume(str(request.get("name", "")))
        elif op == "volume_path":
            snapshot = request.get("snapshot")
            data = storage.volume_path(
                str(request.get("name", "")),
                drivers.load_transport(storage.config),
                None if snapshot is None else str(snapshot))
        else:
            raise errors.InvalidInput(f"unknown op {op!r}")
        return {"ok": True, "data": data}
    except errors.JdssError as exc:
        return {"ok": False, "exit_code": exc.exit_code,
                "message": str(exc)}
    except Exception as exc:           # never let one request end the agent
        LOG.exception("request failed")
        return {"ok": False, "exit_code": 1,
                "message": f"unexpected {type(exc).__name__}: {exc}"}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(MAX_REQUEST)
        try:
            request = json.loads(line)
        except ValueError:
            reply = {"ok": False, "exit_code": 2,
                     "message": "request is not one JSON line"}
        else:
            reply = answer(self.server.cache, request)
        self.wfile.write(json.dumps(reply).encode() + b"\n")


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path):
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)              # a socket left by a crash
        old_umask = os.umask(0o177)
        try:
            super().__init__(path, Handler)
        finally:
            os.umask(old_umask)
        self.cache = StorageCache()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="jdss-agent",
        description="Serve jdss's read-only hot path on a Unix socket.")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help=f"socket path (default {DEFAULT_SOCKET})")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(log.ConsoleFormatter("%(message)s"))
    log.protect(handler)
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        server = Server(args.socket)
    except OSError as exc:
        print(f"jdss-agent: cannot listen on {args.socket}: {exc.strerror}",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(
        target=server.shutdown).start())
    print("ready", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if os.path.exists(args.socket):
            os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
