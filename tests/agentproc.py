"""A jdss-agent of a test's (or the benchmark's) own, and its client.

Started on a socket path, ended by its PID; ``exchange`` speaks the
agent's protocol (see jdss.agent) the way the plugin does.
"""

import json
import os
import socket
import subprocess
import sys

PROGRAM = os.path.join(os.path.dirname(sys.executable), "jdss-agent")
PROTOCOL = 3


class AgentProcess:
    """jdss-agent on ``path``, with ``env`` and extra ``args``."""

    def __init__(self, path, args=(), env=None):
        self.path = str(path)
        self.proc = subprocess.Popen(
            [PROGRAM, "--socket", self.path, *args],
            env=None if env is None else dict(os.environ, **env),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = ""
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("jdss-agent did not start: "
                               + self.stderr.strip())

    def exchange(self, argv, input=None, raw=None, timeout=30):
        """Send one request (``raw`` bytes instead, if given); returns
        ``(accepted, answer)``, the answer decoded or None when the
        connection closed without one."""
        request = {"protocol": PROTOCOL, "argv": [str(a) for a in argv]}
        if input is not None:
            request["input"] = input
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(timeout)
            conn.connect(self.path)
            conn.sendall(raw if raw is not None
                         else json.dumps(request).encode() + b"\n")
            lines = conn.makefile()
            line = lines.readline()
            accepted = bool(line) and bool(json.loads(line).get("accepted"))
            if accepted:
                line = lines.readline()          # the answer follows
        return accepted, json.loads(line) if line else None

    def stop(self):
        """End the agent (what it wrote to stderr: ``self.stderr``);
        whether it was still running."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        self.stderr += err or ""
        return alive
