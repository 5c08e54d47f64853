"""Starting and steering a real jdss-emulator process for tests."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

PASSWORD = "emulator-Secret-42"


def free_port(addresses=("127.0.0.1",)):
    """A TCP port free on every one of ``addresses``."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as other:
                    other.bind((address, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


class Emulator:
    """A running emulator; ``stop()`` ends it (by its PID)."""

    def __init__(self, directory, cert=None, key=None, listens=None,
                 pools=("Pool-0", "Pool-1"), pool_size=100 << 30,
                 plain_http=False, port=None, max_per_page=None,
                 firmware="newer", vips=(), no_vip_portals=False,
                 snapshot_order="created", tgt_portal=None):
        self.directory = directory
        self.state_dir = os.path.join(directory, "emulator-state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.password_file = os.path.join(directory, "emulator.pw")
        with open(self.password_file, "w") as handle:
            handle.write(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        self.addresses = list(listens or ["127.0.0.1"])
        self.port = port or free_port(self.addresses)
        self.cert = cert
        self.control = os.path.join(self.state_dir, "faults.json")
        self.request_log = os.path.join(self.state_dir, "requests.log")
        command = [os.path.join(os.path.dirname(sys.executable),
                                "jdss-emulator"),
                   "--state-dir", self.state_dir,
                   "--password-file", self.password_file,
                   "--pool-size", str(pool_size)]
        for pool in pools:
            command += ["--pool", pool]
        for address in self.addresses:
            command += ["--listen", f"{address}:{self.port}"]
        if max_per_page:
            command += ["--max-per-page", str(max_per_page)]
        command += ["--firmware", firmware, "--snapshot-order",
                    snapshot_order]
        for vip in vips:
            command += ["--vip", vip]
        if no_vip_portals:
            command.append("--no-vip-portals")
        self.tgt_portal = tgt_portal
        if tgt_portal:
            command += ["--tgt-portal", tgt_portal]
        self.firmware = firmware
        if plain_http:
            command.append("--plain-http")
        elif cert:
            command += ["--cert", cert, "--key", key]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self._wait_ready()

    def _wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.strip() == "ready":
                    return
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("emulator did not start: "
                           + self.process.stderr.read())

    def config(self, **values):
        """Config values that reach this emulator."""
        data = {"backend": "joviandss",
                "rest_api_addresses": list(self.addresses),
                "rest_api_port": self.port,
                "rest_api_password_file": self.password_file,
                "rest_api_deadline": 5}
        if self.cert:
            data["driver_ssl_cert_path"] = self.cert
        else:
            data["driver_use_ssl"] = False
        data.update(values)
        return data

    def faults(self, *rules):
        """Replace the fault plan (an empty call clears it)."""
        tmp = self.control + ".tmp"
        with open(tmp, "w") as handle:
            json.dump({"rules": list(rules)}, handle)
        os.replace(tmp, self.control)
        time.sleep(0.25)        # the emulator polls refusals every 0.1 s

    def requests(self):
        """``(listen, method, path, status)`` of every request so far."""
        if not os.path.exists(self.request_log):
            return []
        with open(self.request_log) as handle:
            return [tuple(line.split()[1:5]) for line in handle]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
