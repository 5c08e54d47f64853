"""The ``jdss-emulator`` command: an HTTPS JovianDSS REST API on loopback.

It serves the pools of a state directory (the same files the fake backend
uses) on one or more listen addresses, with basic auth, a request log that
tests and benchmarks read, and fault injection (see
:mod:`jdss.emulator.faults`). It prints ``ready`` once every address
accepts connections and stops cleanly on SIGTERM or SIGINT.
"""

import argparse
import base64
import hmac
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jdss.emulator.api import RestApi
from jdss.emulator.faults import FaultPlan

LOG = logging.getLogger("jdss.emulator")
API_PREFIX = "/api/v4"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "jdss-emulator"
    # headers and body go out as separate writes: without TCP_NODELAY
    # every answer waits for the client's delayed ACK (~40 ms)
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        LOG.debug("%s " + fmt, self.server.listen, *args)

    def _dispatch(self):
        # Every request is logged before it is answered, so that a client
        # that has its answer finds the request in the log.
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        if emulator.faults.refused(self.server.listen):
            # the address went away: so do connections made before
            return self._drop("reset")
        if not emulator.authorized(self.headers.get("Authorization")):
            emulator.log_request(self.server.listen, self.command, self.path,
                                 401)
            return self._reply(401, b"401 unauthorized", "text/plain")
        rule = emulator.faults.take(self.server.listen, self.command,
                                    self.path)
        if rule is not None and rule.failover:
            try:
                return self._faulty(rule, emulator, raw_body)
            finally:
                emulator.faults.fail_over(rule.failover)
                self.close_connection = True
        return self._faulty(rule, emulator, raw_body)

    def _faulty(self, rule, emulator, raw_body):
        """Answer the request as ``rule`` (None: no fault) says."""
        if rule is not None and rule.action == "delay":
            time.sleep(rule.seconds)
        if rule is not None and rule.action == "drop":
            return self._drop("drop")
        if rule is not None and rule.action == "error":
            emulator.log_request(self.server.listen, self.command, self.path,
                                 rule.status)
            return self._reply(rule.status, b"Internal Server Error",
                               "text/html")
        if rule is not None and rule.action == "fail":
            if rule.apply:
                self._answer(raw_body)
            emulator.log_request(self.server.listen, self.command, self.path,
                                 f"{rule.status}-{rule.kind or 'fail'}")
            return self._reply(rule.status, json.dumps(
                {"data": None, "error": rule.error}).encode())
        if rule is not None and rule.action == "empty" and \
                self.command == "GET":
            emulator.log_request(self.server.listen, self.command, self.path,
                                 "200-empty")
            return self._reply(200, b'{"data": null, "error": null}')
        status, payload = self._answer(raw_body)
        if rule is not None and rule.action == "drop_after":
            return self._drop(f"{status}-dropped")
        body = b"" if payload is None else json.dumps(payload).encode()
        emulator.log_request(self.server.listen, self.command, self.path,
                             status)
        self._reply(status, body)

    def _answer(self, raw_body):
        if not self.path.startswith(API_PREFIX + "/"):
            return 404, {"data": None, "error": {
                "class": "werkzeug.exceptions.NotFound", "errno": None,
                "message": "The requested URL was not found on the server."}}
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            return 400, {"data": None, "error": {
                "class": "opene.exceptions.ValidationError", "errno": 22,
                "message": "Request body is not valid JSON"}}
        return self.server.emulator.api.handle(
            self.command, self.path[len(API_PREFIX):], body)

    def _drop(self, status):
        self.close_connection = True
        self.server.emulator.log_request(self.server.listen, self.command,
                                         self.path, status)

    def _reply(self, status, body, content_type="application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class Listener(ThreadingHTTPServer):
    """One listening address. As the appliance's web server: a backlog for
    many clients at once, and each TLS handshake in the connection's own
    thread (never in the accepting one, where one slow client would hold
    up every other)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emulator, address, port):
        self.emulator = emulator
        self.listen = f"{address}:{port}"
        super().__init__((address, port), Handler)

    def process_request_thread(self, request, client_address):
        if self.emulator.tls is not None:
            try:
                request.settimeout(30)
                request = self.emulator.tls.wrap_socket(request,
                                                        server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                request.close()
                return
        super().process_request_thread(request, client_address)


class Emulator:
    """Listeners, credentials, faults and the request log of one run."""

    def __init__(self, args, password):
        self.api = RestApi(args.state_dir, args.pool, args.pool_size,
                           args.max_per_page, firmware=args.firmware,
                           vips=_vips_by_pool(args.vip, args.pool),
                           vip_portals=not args.no_vip_portals,
                           snapshot_order=args.snapshot_order,
                           mirror=_tgt_mirror(args))
        self.faults = FaultPlan(args.control or os.path.join(
            args.state_dir, "faults.json"))
        self.request_log = args.request_log or os.path.join(
            args.state_dir, "requests.log")
        self.expected_auth = "Basic " + base64.b64encode(
            f"{args.user}:{password}".encode()).decode()
        self.tls = None if args.plain_http else self._tls_context(args)
        self.endpoints = [_split_listen(text) for text in args.listen]
        self.listeners = {}
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()

    def _tls_context(self, args):
        cert, key = args.cert, args.key
        if not cert:
            cert, key = make_self_signed(args.state_dir, args.listen)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def authorized(self, header):
        return header is not None and hmac.compare_digest(
            header.encode(), self.expected_auth.encode())

    def log_request(self, listen, method, path, status):
        line = f"{time.time():.6f} {listen} {method} {path} {status}\n"
        with self._log_lock, open(self.request_log, "a") as handle:
            handle.write(line)

    def _start(self, address, port):
        listener = Listener(self, address, port)
        thread = threading.Thread(target=listener.serve_forever,
                                  kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        self.listeners[(address, port)] = listener

    def _stop(self, endpoint):
        listener = self.listeners.pop(endpoint)
        listener.shutdown()
        listener.server_close()

    def sync_listeners(self):
        """Open or close listeners as the fault plan's refusals say."""
        for address, port in self.endpoints:
            refused = self.faults.refused(f"{address}:{port}")
            running = (address, port) in self.listeners
            if refused and running:
                self._stop((address, port))
            elif not refused and not running:
                self._start(address, port)

    def run(self):
        self.sync_listeners()
        print("ready", flush=True)
        while not self._stopping.wait(0.1):
            self.sync_listeners()
        for endpoint in list(self.listeners):
            self._stop(endpoint)
        for mirror in self.api.mirrors.values():
            if mirror.started:            # a tgtd this emulator started
                mirror.stop_daemon()

    def stop(self, *_args):
        self._stopping.set()


def _split_listen(text):
    address, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen {text!r}: expected "
                                         "ADDR:PORT")
    return address.strip("[]"), int(port)


def _tgt_mirror(args):
    """``pool -> TgtMirror`` serving the pools through tgtd, or None."""
    if not args.tgt_portal:
        return None
    from jdss.backends.tgt import TgtMirror
    return lambda pool: TgtMirror(args.tgt_portal, args.state_dir, pool)


def _vips_by_pool(specs, pools):
    """``{pool: [vip record]}`` of ``--vip [POOL/]NAME=ADDRESS`` options."""
    vips = {pool: [] for pool in pools}
    for spec in specs or ():
        target, _, address = spec.partition("=")
        pool, _, name = target.rpartition("/")
        record = {"name": name, "address": address, "interface": "eth0",
                  "netmask": "255.255.255.0"}
        for each in ([pool] if pool else pools):
            vips.setdefault(each, []).append(record)
    return vips


def _vip_spec(text):
    target, sep, address = text.partition("=")
    name = target.rpartition("/")[2]
    if not sep or not name or not address:
        raise argparse.ArgumentTypeError(f"--vip {text!r}: expected "
                                         "[POOL/]NAME=ADDRESS")
    return text


def make_self_signed(directory, listens):
    """Make a self-signed certificate for the listen addresses."""
    cert = os.path.join(directory, "emulator-cert.pem")
    key = os.path.join(directory, "emulator-key.pem")
    names = {"DNS:localhost"}
    for text in listens:
        address = _split_listen(text)[0]
        kind = "IP" if address.replace(".", "").isdigit() or ":" in address \
            else "DNS"
        names.add(f"{kind}:{address}")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "30", "-subj", "/CN=jdss-emulator", "-keyout", key,
         "-out", cert, "-addext",
         "subjectAltName=" + ",".join(sorted(names))],
        check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="jdss-emulator",
        description="Serve the JovianDSS REST API from the jdss pool model.")
    parser.add_argument("--listen", action="append", required=True,
                        metavar="ADDR:PORT",
                        help="address to serve on (repeat for several)")
    parser.add_argument("--pool", action="append", metavar="NAME",
                        help="pool to serve (repeatable; default Pool-0)")
    parser.add_argument("--pool-size", type=int, default=1 << 40,
                        help="bytes of a pool made on first use")
    parser.add_argument("--user", default="admin", help="REST user")
    parser.add_argument("--password-file", required=True,
                        help="file whose first line is the REST password")
    parser.add_argument("--state-dir", required=True,
                        help="directory of the pools' state")
    parser.add_argument("--cert", help="TLS certificate (PEM)")
    parser.add_argument("--key", help="TLS private key (PEM)")
    parser.add_argument("--plain-http", action="store_true",
                        help="serve plain HTTP instead of HTTPS")
    parser.add_argument("--control", help="fault plan file (default: "
                                          "STATE_DIR/faults.json)")
    parser.add_argument("--request-log", help="request log (default: "
                                              "STATE_DIR/requests.log)")
    parser.add_argument("--max-per-page", type=int, metavar="N",
                        default=100,
                        help="serve at most N entries per page, whatever "
                             "per_page asks for (default 100; 0: no limit)")
    parser.add_argument("--firmware", choices=("newer", "older"),
                        default="newer",
                        help="answer as this firmware generation does "
                             "(snapshot records, some errors)")
    parser.add_argument("--vip", action="append", type=_vip_spec,
                        metavar="[POOL/]NAME=ADDRESS",
                        help="a virtual IP of every pool, or of POOL "
                             "(repeatable)")
    parser.add_argument("--no-vip-portals", action="store_true",
                        help="firmware without VIP restriction: refuse "
                             "vip_allowed_portals in target bodies")
    parser.add_argument("--tgt-portal", metavar="ADDR:PORT",
                        help="serve the pools' volumes as real iSCSI "
                             "targets through a tgtd on ADDR:PORT (started "
                             "if none runs there, stopped on exit)")
    parser.add_argument("--snapshot-order",
                        choices=("created", "reverse", "random"),
                        default="created",
                        help="order of snapshot lists (the appliance "
                             "promises none)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    args.pool = args.pool or ["Pool-0"]
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    for text in args.listen:
        try:
            _split_listen(text)
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else
                        logging.WARNING, format="jdss-emulator: %(message)s")
    try:
        with open(args.password_file, encoding="utf-8") as handle:
            password = handle.readline().rstrip("\r\n")
        os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
        emulator = Emulator(args, password)
        signal.signal(signal.SIGTERM, emulator.stop)
        signal.signal(signal.SIGINT, emulator.stop)
        emulator.run()
    except (OSError, subprocess.SubprocessError, ssl.SSLError) as exc:
        print(f"jdss-emulator: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
